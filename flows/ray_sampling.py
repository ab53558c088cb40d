"""`engine.backend: ray`: engine replicas as actors of a Ray cluster, placed by Ray on the cluster's nodes.

`RaySampler` connects to `engine.ray.address` (or starts a local Ray instance when it is None, or uses the Ray
connection this process already holds) and starts `engine.replicas` `EngineActor`s, each holding one
`stages.sample.Sampler`. On a cluster with GPUs each actor reserves `engine.tensor_parallel_size` GPUs of one node
(Ray sets its CUDA_VISIBLE_DEVICES, and its engine's tensor-parallel workers are its own processes); on a cluster
without GPUs it reserves `engine.ray.num_cpus` CPUs, which are also its engine's threads. Shards are split over the
actors exactly as over local replicas (`flows.replicas.ReplicatedSampler`): the same traces for the same seeds, and
an actor that dies costs only its slice, which a live actor or a fresh one in its place samples.

The cluster's nodes need flywheel and its dependencies installed (the actors import `flows`), and the model
folder at the same path on every node (a shared file system); actors run with the environment their node's Ray
gives them, plus the fault-injection variables of flows/faults.py. It does not start nodes, autoscale, or use
Ray Data or placement groups: a replica is one actor, wherever Ray finds its resources.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

import pyarrow as pa

from configs import EngineConfig, ModelConfig
from flows.faults import ENVIRONMENT_VARIABLE, PAUSE_VARIABLE
from flows.ray_connection import RayConnection
from flows.replicas import Replica, ReplicaError, ReplicatedSampler, sample_slice, start_engine, stop_engine
from stages.sample import ReplicaUsage, SamplingSpec

STOP_TIMEOUT_S = 30.0


class EngineActor:
    """One replica's engine, in the process of a Ray actor."""

    def __init__(
        self,
        name: str,
        environment: dict[str, str],
        model_path: str,
        model: ModelConfig,
        engine: EngineConfig,
        seed: int,
    ) -> None:
        self._notes = start_engine(name, environment, model_path, model, engine, seed)

    def notes(self) -> list[str]:
        return self._notes

    def node(self) -> str:
        """The address its node registered with the cluster (`ray start --node-ip-address`, else the node's IP)."""
        import ray

        here = ray.get_runtime_context().get_node_id()
        return next(str(node["NodeManagerAddress"]) for node in ray.nodes() if node["NodeID"] == here)

    def sample(self, problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]) -> tuple[pa.Table, ReplicaUsage]:
        return sample_slice(problems, spec, options)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        stop_engine()


class ActorReplica:
    """A replica as an `EngineActor` of the connected Ray cluster."""

    def __init__(self, name: str, resources: dict[str, float], environment: dict[str, str], *engine_args: Any) -> None:
        import ray

        actor_class = ray.remote(EngineActor)
        self._actor = actor_class.options(
            num_cpus=resources["CPU"], num_gpus=resources.get("GPU", 0), max_restarts=0, max_task_retries=0
        ).remote(name, environment, *engine_args)
        self.started: Future[list[str]] = self._actor.notes.remote().future()
        self.where = f"a Ray actor reserving {resources}"

    def sample(
        self, problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]
    ) -> Future[tuple[pa.Table, ReplicaUsage]]:
        return self._actor.sample.remote(problems, spec, options).future()

    def died(self, error: BaseException) -> bool:
        from ray.exceptions import RayActorError

        # An engine that raised while starting is an error of the engine, not of the actor's process.
        return isinstance(error, RayActorError) and not error.actor_init_failed

    def process_id(self) -> int:
        import ray

        self.started.result()  # one started in place of a dead one may still be starting
        return int(ray.get(self._actor.pid.remote(), timeout=60))

    def node(self) -> str:
        """The IP address of the node it runs on."""
        import ray

        self.started.result()
        return str(ray.get(self._actor.node.remote(), timeout=60))

    def stop(self) -> None:
        """Stop its engine, then end the actor; one already dead is only forgotten."""
        import ray

        try:
            ray.get(self._actor.close.remote(), timeout=STOP_TIMEOUT_S)
        except Exception:  # dead, or it cannot stop cleanly: ended below either way
            pass
        ray.kill(self._actor, no_restart=True)


def replica_resources(engine: EngineConfig, cluster: dict[str, float]) -> dict[str, float]:
    """What one replica's actor asks the cluster for: GPUs of one node where the cluster has GPUs, else CPUs.

    Raises ReplicaError when the whole cluster cannot hold `engine.replicas` of them."""
    gpus = cluster.get("GPU", 0.0) > 0
    resources = {"CPU": engine.ray.num_cpus} | ({"GPU": float(engine.tensor_parallel_size)} if gpus else {})
    for name, each in resources.items():
        needed, has = each * engine.replicas, cluster.get(name, 0.0)
        if needed > has:
            raise ReplicaError(
                f"engine.replicas={engine.replicas} Ray actors of {resources} each need {needed:g} {name} in all; "
                f"the Ray cluster has {has:g}"
            )
    return resources


def actor_environment(gpus: bool) -> dict[str, str]:
    """What an actor's environment adds (a variable its node already sets is kept): on CPU, vLLM leaves thread
    placement to the OS (Ray, not vLLM, knows which cores an actor may use), with Ray's OMP_NUM_THREADS; and the
    fault-injection variables of this process, so a test can kill a replica wherever it runs."""
    environment = {} if gpus else {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    for name in (ENVIRONMENT_VARIABLE, PAUSE_VARIABLE):
        if name in os.environ:
            environment[name] = os.environ[name]
    return environment


class RaySampler(ReplicatedSampler):
    """`engine.replicas` engines of `model_path` as actors of a Ray cluster."""

    def __init__(self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int) -> None:
        import ray

        self._connection: RayConnection | None = None
        if not ray.is_initialized():
            init_options = {"include_dashboard": False} if engine.ray.address is None else {}
            self._connection = RayConnection(engine.ray.address, **init_options)
        try:
            resources = replica_resources(engine, ray.cluster_resources())
            environment = actor_environment(gpus="GPU" in resources)

            def make_replica(index: int, generation: int) -> Replica:
                name = f"replica {index}.{generation}"
                return ActorReplica(name, resources, environment, model_path, model, engine, seed)

            super().__init__(model_path, engine.replicas, make_replica, start_timeout_s=engine.ray.startup_timeout_s)
        except BaseException:
            self._disconnect()
            raise
        where = engine.ray.address or "a local Ray instance"
        self.notes.insert(0, f"sampling with {engine.replicas} Ray actors of {resources} on {where}")
        self.notes += [f"replica {index} runs on node {node}" for index, node in enumerate(self.nodes())]

    def nodes(self) -> list[str]:
        """The node (IP address) of each replica, in replica order."""
        return [replica.node() for replica in self.replicas() if isinstance(replica, ActorReplica)]

    def close(self) -> None:
        super().close()
        self._disconnect()

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
