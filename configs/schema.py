"""The run config schema: one pydantic model per stage, composed into `RunConfig`.

Every model is frozen and rejects unknown keys, so a typo in a YAML file is a load-time error rather
than a silently ignored knob. YAML files hold only what differs from these defaults.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
TINY_MODEL_RECIPES = ("tiny-arithmetic",)


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(Strict):
    """The policy model of round 0: a Hugging Face model (hub id or local folder) or a local recipe."""

    path: str | None = Field(
        default=None,
        description="Hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a local folder in Hugging Face format.",
    )
    init: Literal["tiny-arithmetic"] | None = Field(
        default=None,
        description="Create a tiny Llama model and character tokenizer locally instead of loading one.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights dtype for sampling and training."
    )
    max_model_len: int | None = Field(
        default=None, gt=0, description="Context length for vLLM; None uses the model's own."
    )
    init_seed: int = Field(default=0, description="Seed for the weights of a model created by `init`.")

    @model_validator(mode="after")
    def exactly_one_source(self) -> ModelConfig:
        if (self.path is None) == (self.init is None):
            raise ValueError("set exactly one of `path` (hub id or local folder) or `init` (tiny-arithmetic)")
        return self


class ArithmeticConfig(Strict):
    """Built-in generator of integer arithmetic problems with exact answers."""

    digits: int = Field(default=2, ge=1, le=6, description="Digits per operand.")
    ops: list[Literal["+", "-"]] = Field(default=["+"], min_length=1, description="Operators to draw from.")
    n_seed: int = Field(default=1000, ge=0, description="Labelled warm-start problems (split `seed`).")
    n_test: int = Field(default=500, ge=1, description="Held-out problems (split `test`).")
    n_train: int | None = Field(
        default=None, ge=1, description="Unlabelled pool size (split `train`); None takes all the rest."
    )


class DatasetSourceConfig(Strict):
    """Problems from `datasets.load_dataset`: a hub dataset or local files (json, jsonl, csv, parquet)."""

    path: str = Field(description="Hub dataset id, or a builder name such as `json` or `parquet`.")
    name: str | None = Field(default=None, description="Dataset configuration name (e.g. `main` for gsm8k).")
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        default=None,
        description="`datasets.load_dataset`'s data_files: a path, a list, or split name -> path(s), for builders "
        "such as `json` or `parquet`.",
    )
    splits: dict[Literal["seed", "train", "test"], str] = Field(
        default={"train": "train", "test": "test"},
        description="flywheel split -> dataset split. `seed` rows need a solution or an answer.",
    )
    prompt_field: str = Field(default="prompt", description="Column holding the problem text.")
    answer_field: str = Field(
        default="answer", description="Column holding the gold answer (or text it is extracted from, `answer_regex`)."
    )
    solution_field: str | None = Field(
        default=None, description="Worked solutions for warm-start SFT; None trains on the answer alone."
    )
    answer_regex: str | None = Field(
        default=None,
        description="Regex whose first group extracts the gold answer from the answer field "
        r"(e.g. `####\s*(.+)$` for GSM8K).",
    )
    domain: str = Field(default="math", description="Verifier domain for every row of this source.")
    max_rows_per_split: int | None = Field(
        default=None, ge=1, description="Read only the first N rows of each split; None reads them all."
    )

    @field_validator("answer_regex")
    @classmethod
    def regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if re.compile(value).groups < 1:
                    raise ValueError("answer_regex needs one capturing group")
            except re.error as error:
                raise ValueError(f"not a valid regular expression: {error}") from error
        return value


ANSWER_TAG_INSTRUCTION = (
    "Think step by step inside <think> </think> tags, then give only the final answer inside <answer> </answer> tags."
)


class CountdownConfig(Strict):
    """Built-in generator of countdown puzzles: reach the target from the given numbers with + - * /."""

    n_numbers: int = Field(default=4, ge=2, le=6, description="Numbers given per puzzle.")
    max_number: int = Field(default=99, ge=2, le=1000, description="Numbers are drawn from 1..max_number.")
    min_target: int = Field(default=10, ge=1, description="Smallest target.")
    max_target: int = Field(default=100, ge=1, description="Largest target.")
    use_all: bool = Field(
        default=False, description="True: every number exactly once; False: each number at most once."
    )
    n_seed: int = Field(default=200, ge=0, description="Labelled warm-start puzzles (split `seed`).")
    n_train: int = Field(default=2000, ge=1, description="Unlabelled pool size (split `train`).")
    n_test: int = Field(default=200, ge=1, description="Held-out puzzles (split `test`).")

    @model_validator(mode="after")
    def targets_ordered(self) -> CountdownConfig:
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) must not exceed max_target ({self.max_target})")
        return self


class ReasoningGymConfig(Strict):
    """Problems from the `reasoning-gym` package's procedural tasks, scored by the task's own checker."""

    tasks: list[str] = Field(
        min_length=1, description="reasoning-gym task names (e.g. leg_counting, countdown); each gets the sizes below."
    )
    task_config: dict[str, dict[str, Any]] = Field(
        default={}, description="Per task, keyword arguments for `reasoning_gym.create_dataset` (difficulty knobs)."
    )
    n_seed: int = Field(default=0, ge=0, description="Labelled warm-start problems per task (split `seed`).")
    n_train: int = Field(default=1000, ge=1, description="Unlabelled problems per task (split `train`).")
    n_test: int = Field(default=100, ge=1, description="Held-out problems per task (split `test`).")
    answer_instruction: str | None = Field(
        default=ANSWER_TAG_INSTRUCTION,
        description="Appended to every question; the verifier reads the answer from <answer> tags.",
    )

    @model_validator(mode="after")
    def task_config_for_listed_tasks(self) -> ReasoningGymConfig:
        unlisted = sorted(set(self.task_config) - set(self.tasks))
        if unlisted:
            raise ValueError(f"task_config names tasks not in `tasks`: {', '.join(unlisted)}")
        return self


class ProblemsConfig(Strict):
    """Where the run's problems come from; the chosen source's section says how many and which."""

    source: Literal["arithmetic", "dataset", "countdown", "reasoning_gym"] = Field(
        default="arithmetic", description="Problem source; its section below configures it."
    )
    arithmetic: ArithmeticConfig = Field(default=ArithmeticConfig(), description="Used when source is `arithmetic`.")
    dataset: DatasetSourceConfig | None = Field(
        default=None, description="Used when source is `dataset`; required then."
    )
    countdown: CountdownConfig = Field(default=CountdownConfig(), description="Used when source is `countdown`.")
    reasoning_gym: ReasoningGymConfig | None = Field(
        default=None, description="Used when source is `reasoning_gym`; required then."
    )
    system_prompt: str | None = Field(default=None, description="System message prepended to every prompt.")

    @model_validator(mode="after")
    def dataset_given_when_used(self) -> ProblemsConfig:
        if self.source == "dataset" and self.dataset is None:
            raise ValueError("source is `dataset` but the `dataset` section is missing")
        if self.source == "reasoning_gym" and self.reasoning_gym is None:
            raise ValueError("source is `reasoning_gym` but the `reasoning_gym` section is missing")
        return self


BucketName = Literal["unseen", "unsolved", "hard", "medium", "easy", "solved", "unjudged"]


class DecontaminateConfig(Strict):
    """Word n-gram overlap with the held-out (eval) texts: a text sharing any n-gram with one is contaminated.

    Texts are lowercased and split on whitespace. Template words, those found in at least `template_share` of the
    items of a source (every split: held-out, train and seed; and in at least `template_min_items` of them), are
    left out before n-grams are
    formed: an instruction, a prompt template or a system prompt appears in every item, so sharing it says nothing
    about contamination; n-grams are made of the remaining content words. A text of fewer than `ngram_words` content
    words has no n-grams and is never flagged (short prompts are still caught by the exact-prompt check of the
    select stage)."""

    enabled: bool = Field(default=True, description="Check for n-gram overlap with the eval texts.")
    ngram_words: int = Field(default=8, ge=1, le=64, description="Words per n-gram (8 is a common choice).")
    template_share: float | None = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="A word in at least this share of one source's items (all splits) is template text and left out "
        "of the n-grams; None keeps every word.",
    )
    template_min_items: int = Field(
        default=10,
        ge=2,
        description="A template word is also in at least this many of the source's items: in a handful of items a "
        "share says nothing, so a source with few problems in all keeps every word.",
    )


class DedupConfig(Strict):
    """MinHash LSH near-duplicate removal of completions, within a round and against earlier rounds' kept traces."""

    enabled: bool = Field(
        default=True, description="False keeps only the exact-duplicate check within a problem and round."
    )
    scope: Literal["problem", "global"] = Field(
        default="problem",
        description="`problem`: compare a completion only with completions of the same problem; `global`: with all.",
    )
    shingle_words: int = Field(default=5, ge=1, le=64, description="Words per shingle (word n-gram).")
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations (signature length).")
    threshold: float = Field(
        default=0.8, gt=0.0, le=1.0, description="Jaccard similarity of shingle sets at which two are duplicates."
    )
    min_words: int = Field(
        default=10,
        ge=1,
        description="Completions with fewer words are never MinHashed, only compared exactly within their "
        "problem and round: a few-word answer has one or two shingles, so MinHash says nothing about it.",
    )
    seed: int = Field(default=1, description="Seed of the MinHash permutations; part of every stored signature.")

    @model_validator(mode="after")
    def min_words_covers_a_shingle(self) -> DedupConfig:
        if self.min_words < self.shingle_words:
            raise ValueError(f"min_words ({self.min_words}) must be at least shingle_words ({self.shingle_words})")
        return self


class SelectConfig(Strict):
    """Which problems a round samples: a seeded draw from the train pool, shaped by the difficulty history."""

    problems_per_round: int = Field(default=2000, ge=1, description="Problems drawn from the train pool.")
    skip_solved_rounds: int = Field(
        default=0, ge=0, description="Skip problems `solved` (pass rate 1) in any of the last M rounds; 0 skips none."
    )
    max_unsolved_rounds: int | None = Field(
        default=None,
        ge=1,
        description="Retry budget: a problem `unsolved` (pass rate 0) in this many earlier rounds is not drawn "
        "again; None retries forever.",
    )
    informative_only: bool = Field(
        default=False,
        description="For GRPO: draw only problems not known to be uninformative, i.e. whose latest pass rate is "
        "strictly between 0 and 1, or never sampled (DAPO-style dynamic sampling at selection time).",
    )
    bucket_weights: dict[BucketName, float] = Field(
        default={},
        description="Relative draw weight by a problem's latest bucket (`unseen` if never sampled); buckets not "
        "listed weigh 1, weight 0 excludes. E.g. {medium: 3, hard: 2, easy: 0.5}.",
    )
    decontaminate: DecontaminateConfig = Field(
        default=DecontaminateConfig(), description="N-gram overlap of train prompts with the held-out split."
    )

    @field_validator("bucket_weights")
    @classmethod
    def weights_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, weight in value.items() if weight < 0)
        if negative:
            raise ValueError(f"bucket weights must be >= 0; negative for: {', '.join(negative)}")
        return value


class SampleConfig(Strict):
    """How a round samples traces of its problems with vLLM."""

    k: int = Field(default=4, ge=1, description="Traces sampled per problem.")
    temperature: float = Field(default=1.0, ge=0.0, description="Sampling temperature; 0 is greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling: 1.0 samples from all tokens.")
    max_tokens: int = Field(
        default=512, ge=1, description="Longest completion in tokens; a trace cut here has finish_reason `length`."
    )
    stop: list[str] = Field(default=[], description="Extra stop strings besides the tokenizer's EOS.")
    shard_size: int = Field(default=1024, ge=1, description="Problems per traces part file.")


class OpenAIServersConfig(Strict):
    """OpenAI-compatible servers for `engine.backend: openai`: `managed` starts `vllm serve` replicas of the round's
    checkpoint on 127.0.0.1 and stops them before training; `external` samples from the user's endpoints, which
    serve a fixed model (e.g. a stronger teacher): only the sampling stage uses them, evaluation stays on the
    in-process engine of the round's own checkpoint."""

    mode: Literal["managed", "external"] = Field(
        default="managed",
        description="managed: flywheel runs `vllm serve` (engine.replicas of them) and sends the prompt as token ids "
        "rendered with the model's chat template, as in-process sampling does; external: `endpoints` serve a "
        "fixed model, prompts go as chat messages and the server applies its own template.",
    )
    endpoints: list[str] = Field(
        default=[],
        description="external: base URLs of the OpenAI API, e.g. http://10.0.0.5:8000/v1; requests are spread "
        "over them. Must not hold credentials (use api_key_env).",
    )
    model: str | None = Field(
        default=None,
        description="external: the served model name sent with every request; None takes the first model the "
        "first endpoint lists at /models. Recorded in the manifest and in the traces' model_ref.",
    )
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key; the key itself is never stored.",
    )
    concurrency: int = Field(default=16, ge=1, description="Requests in flight per endpoint.")
    request_n: bool | None = Field(
        default=None,
        description="true: the k samples of a problem in one request with `n` and `seed` (vLLM gives sample i "
        "seed+i; each sample's length comes from vLLM's return_token_ids). false: k requests with n=1 and seeds "
        "seed+i, for servers without `n` or per-sample token ids; on vLLM both give the same traces. None: true "
        "in mode managed, false in mode external.",
    )
    timeout_s: float = Field(default=600.0, gt=0, description="Timeout of one request, in seconds.")
    max_retries: int = Field(
        default=4,
        ge=0,
        description="Retries of a request on connection errors, timeouts, 408, 409, 429 and 5xx, with exponential "
        "back-off (the openai client's own retry policy).",
    )
    startup_timeout_s: float = Field(
        default=900.0, gt=0, description="managed: how long a `vllm serve` replica may take to answer /health."
    )
    serve_args: list[str] = Field(
        default=[], description="managed: extra command-line arguments for every `vllm serve` replica."
    )

    @field_validator("endpoints")
    @classmethod
    def endpoints_hold_no_credentials(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^/@\s]+(/\S*)?$", url):
                raise ValueError(
                    f"endpoint {url!r} is not an http(s) base URL without credentials, e.g. http://host:8000/v1 "
                    "(an API key goes in the environment variable named by api_key_env)"
                )
        return value


class RayEngineConfig(Strict):
    """The Ray cluster of `engine.backend: ray`: one engine actor per replica, placed by Ray on the cluster's nodes."""

    address: str | None = Field(
        default=None,
        description="Address of a running Ray cluster's head (host:port, as `ray start --head` prints it, or "
        "'auto' for the cluster of this node); None starts a local Ray instance on this machine for the run. "
        "A Ray connection this process already holds (orchestration.task_runner.kind ray) is used as it is.",
    )
    num_cpus: float = Field(
        default=1.0,
        gt=0,
        description="CPUs each replica's actor reserves. On a cluster without GPUs they are also its engine's "
        "threads (OMP_NUM_THREADS); with GPUs each replica reserves engine.tensor_parallel_size GPUs of one node.",
    )
    startup_timeout_s: float = Field(
        default=900.0,
        gt=0,
        description="How long the replicas may take to be placed and start their engines; beyond it the stage "
        "fails naming what each replica asked the cluster for.",
    )


class EngineConfig(Strict):
    """vLLM engine settings and where sampling runs. Only what differs between machines lives here, so a run may
    resume on another backend: every backend seeds each (problem, sample) the same way."""

    backend: Literal["vllm", "replicas", "ray", "openai"] = Field(
        default="vllm",
        description="vllm: one engine in the flow's process. replicas: engine.replicas engines, each in a process "
        "of its own (on GPU, each on its own tensor_parallel_size devices), every shard's problems split over them. "
        "ray: engine.replicas engines as actors of a Ray cluster (engine.ray), possibly on several nodes, split "
        "the same way. openai: OpenAI-compatible servers (engine.openai), started by flywheel or external.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        description="Engines (backends replicas and ray) or managed `vllm serve` servers (backend openai).",
    )
    openai: OpenAIServersConfig = Field(
        default=OpenAIServersConfig(), description="The servers of backend openai."
    )
    ray: RayEngineConfig = Field(default=RayEngineConfig(), description="The Ray cluster of backend ray.")

    kv_cache_space_gib: float = Field(
        default=1.0, gt=0, description="CPU only (VLLM_CPU_KVCACHE_SPACE): KV cache size in GiB."
    )
    gpu_memory_utilization: float = Field(
        default=0.85, gt=0.0, le=1.0, description="GPU only: share of GPU memory the vLLM engine may take."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs one vLLM engine splits the model across.")
    enable_prefix_caching: bool = Field(
        default=True, description="Reuse the KV cache of a shared prompt prefix (the k samples of a problem)."
    )
    enable_chunked_prefill: bool | None = Field(
        default=None,
        description="Split long prefills across engine steps. None: off on CPU, vLLM's default on GPU. flywheel "
        "seeds every request, and vLLM's CPU backend cannot rewind a seeded request's generator after a partial "
        "prefill ('CPU Generator does not use offset'), so true is refused on CPU.",
    )
    enforce_eager: bool = Field(
        default=False,
        description="Run the model without torch.compile (vLLM's enforce_eager): an engine starts in seconds "
        "instead of a minute of compiling on CPU, and decodes slower. For small models and quick runs.",
    )
    core_in_process: bool = Field(
        default=False,
        description="Run vLLM's engine core in the flow's process (VLLM_ENABLE_V1_MULTIPROCESSING=0) instead of a "
        "process of its own (vLLM's default, which overlaps scheduling with the model): each engine start then "
        "skips a second import of vLLM and torch, tens of seconds on a busy CPU. For small models and quick runs.",
    )
    extra: dict[str, Any] = Field(default={}, description="Passed to `vllm.LLM(...)` unchanged.")

    @model_validator(mode="after")
    def openai_servers_are_named(self) -> EngineConfig:
        servers = self.openai
        if self.backend == "openai" and servers.mode == "external" and not servers.endpoints:
            raise ValueError("engine.openai.mode external needs engine.openai.endpoints (base URLs of the servers)")
        if servers.mode == "managed" and servers.endpoints:
            raise ValueError(
                "engine.openai.endpoints are for mode external; mode managed starts its own servers "
                "(engine.replicas of them)"
            )
        return self


class VerifyConfig(Strict):
    """How verifiers run. Every call has a hard wall-clock timeout; a verifier never hangs a round."""

    timeout_s: float = Field(default=5.0, gt=0.0, description="Wall-clock limit per verifier call.")
    workers: int | None = Field(default=None, ge=1, description="Verifier worker processes; None: one per core.")
    memory_limit_mb: int = Field(default=1024, ge=64, description="Address-space limit of a verifier worker.")
    format_weight: float = Field(
        default=0.0, ge=0.0, description="Weight of the `<think>...</think>` format reward added to `reward`."
    )


CurationFilterName = Literal[
    "cannot_judge", "incorrect", "too_long", "format", "contaminated", "duplicate", "per_problem_cap"
]
CURATION_FILTERS: tuple[CurationFilterName, ...] = get_args(CurationFilterName)
# Without these the dataset would not be what it promises: judged, correct traces, at most max_per_problem each.
REQUIRED_CURATION_FILTERS: tuple[CurationFilterName, ...] = ("cannot_judge", "incorrect", "per_problem_cap")


class CurateConfig(Strict):
    """What becomes training data: correct, untruncated, uncontaminated, not a near-duplicate, capped per problem."""

    filters: list[CurationFilterName] = Field(
        default=list(CURATION_FILTERS),
        description="Curation filters in the order they run; a dropped trace's `drop_reason` is the first that "
        "drops it. Any order of the others, then `duplicate` (optional), then `per_problem_cap` last: those two "
        "choose among the traces still in, shortest first. `cannot_judge` and `incorrect` are required.",
    )
    max_per_problem: int = Field(default=1, ge=1, description="Correct traces kept per problem.")
    hard_below: float = Field(default=0.3, gt=0.0, lt=1.0, description="Pass rate under this is `hard`.")
    easy_above: float = Field(default=0.7, gt=0.0, lt=1.0, description="Pass rate over this is `easy`.")
    require_format: bool = Field(
        default=False, description="Drop correct traces without `<think>...</think>` before the answer (`format`)."
    )
    dedup: DedupConfig = Field(default=DedupConfig(), description="Near-duplicate removal of kept completions.")
    decontaminate: DecontaminateConfig = Field(
        default=DecontaminateConfig(), description="N-gram overlap of traces (prompt and completion) with eval texts."
    )

    @field_validator("filters")
    @classmethod
    def filters_can_work(cls, value: list[CurationFilterName]) -> list[CurationFilterName]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"filters listed more than once: {', '.join(repeated)}")
        missing = [name for name in REQUIRED_CURATION_FILTERS if name not in value]
        if missing:
            raise ValueError(
                f"filters must include {', '.join(missing)}: the dataset holds only judged, correct traces, "
                "at most max_per_problem per problem"
            )
        if value[-1] != "per_problem_cap":
            raise ValueError(
                "per_problem_cap must be the last filter: it counts the traces kept, so a trace that a later "
                "filter drops would take the place of one that is kept"
            )
        if "duplicate" in value and value.index("duplicate") != len(value) - 2:
            raise ValueError(
                "duplicate must come right before per_problem_cap: it keeps one trace of each cluster of "
                "near-duplicates, and a kept representative that a later filter drops would take its cluster with it"
            )
        return value

    @model_validator(mode="after")
    def edges_ordered(self) -> CurateConfig:
        if self.hard_below >= self.easy_above:
            raise ValueError(f"hard_below ({self.hard_below}) must be below easy_above ({self.easy_above})")
        return self


TrainMethod = Literal["sft", "grpo", "sft_then_grpo"]


class LoraConfig(Strict):
    """Train a LoRA adapter (peft) instead of all weights; it is merged into the saved model, so the next round's
    vLLM engine and any other tool load a plain Hugging Face checkpoint."""

    r: int = Field(default=16, ge=1, description="Adapter rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the adapter's input (lora_dropout).")
    target_modules: str | list[str] = Field(
        default="all-linear", description="Module names to adapt, or `all-linear` (peft's shorthand)."
    )


class DynamicSamplingConfig(Strict):
    """DAPO-style dynamic sampling for GRPO: when the round's informative problems (sampled pass rate strictly
    between 0 and 1) are fewer than GRPO needs, draw more unseen train problems, sample and verify them with the
    round's model, and add the informative ones, until enough are found or the cap is reached."""

    enabled: bool = Field(default=False, description="Draw more problems when the round has too few informative ones.")
    min_problems: int | None = Field(
        default=None,
        ge=1,
        description="Informative problems wanted; None: max_steps x prompts per step (per_device_train_batch_size "
        "x gradient_accumulation_steps / num_generations), so no step repeats a problem.",
    )
    draw_size: int = Field(default=64, ge=1, description="Problems sampled per extra draw.")
    max_extra_problems: int = Field(
        default=256, ge=1, description="Cap on the problems drawn beyond the round's selection, over all draws."
    )


class GrpoConfig(Strict):
    """The GRPO phase: TRL's `GRPOTrainer` on the round's problems, rewarded by flywheel's verifiers.

    Names follow TRL's `GRPOConfig`; `trl_args` passes anything else through unchanged."""

    problems: Literal["informative", "all"] = Field(
        default="informative",
        description="`informative`: the round's problems with a sampled pass rate strictly between 0 and 1 "
        "(the only ones whose group advantages are not all zero); `all`: every judged problem of the round.",
    )
    max_steps: int = Field(default=200, ge=1, description="Optimizer steps of the GRPO phase.")
    learning_rate: float = Field(default=1e-6, gt=0.0, description="Peak learning rate.")
    per_device_train_batch_size: int = Field(
        default=8, ge=1, description="Completions per device per step (prompts x num_generations)."
    )
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="Batches summed into one optimizer step.")
    num_generations: int = Field(default=8, ge=2, description="Completions per prompt (the group size).")
    max_completion_length: int | None = Field(default=None, ge=1, description="None uses sample.max_tokens.")
    temperature: float = Field(default=1.0, gt=0.0, description="Temperature of GRPO's own generation.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling of GRPO's own generation.")
    beta: float = Field(default=0.0, ge=0.0, description="KL coefficient; 0 loads no reference model.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = Field(
        default="dapo", description="TRL's loss formulation (how token losses are normalised and clipped)."
    )
    epsilon: float = Field(default=0.2, gt=0.0, description="Lower clipping bound of the ratio.")
    epsilon_high: float | None = Field(default=None, gt=0.0, description="Upper clipping bound; None = epsilon.")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        default="group",
        description="Divide advantages by the reward standard deviation of the group or the batch, or not at all.",
    )
    mask_truncated_completions: bool = Field(
        default=False, description="Leave completions cut at the length limit out of the loss."
    )
    warmup_steps: int = Field(default=0, ge=0, description="Learning-rate warm-up, in optimizer steps.")
    lr_scheduler_type: str = Field(default="constant", description="A transformers scheduler name (e.g. cosine).")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient norm clipping.")
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW weight decay.")
    use_vllm: bool = Field(
        default=False,
        description="Generate with vLLM inside GRPO (GPU only): `vllm_mode` colocate shares the training GPUs, "
        "server talks to `trl vllm-serve`. False generates with transformers (works on CPU).",
    )
    vllm_mode: Literal["colocate", "server"] = Field(
        default="colocate", description="With use_vllm: vLLM inside the training process, or a `trl vllm-serve` server."
    )
    vllm_server_base_url: str | None = Field(default=None, description="Server mode: e.g. http://host:8000.")
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0.0, le=1.0, description="Colocate mode.")
    dynamic_sampling: DynamicSamplingConfig = Field(
        default=DynamicSamplingConfig(),
        description="With problems `informative`: draw more problems when the round has too few informative ones.",
    )
    trl_args: dict[str, Any] = Field(default={}, description="Extra `trl.GRPOConfig` arguments.")

    @model_validator(mode="after")
    def batch_holds_whole_groups(self) -> GrpoConfig:
        generation_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if generation_batch % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x gradient_accumulation_steps ({generation_batch}) must be a multiple "
                f"of num_generations ({self.num_generations}): each prompt's group is scored together"
            )
        return self

    @model_validator(mode="after")
    def dynamic_sampling_tops_up_informative_problems(self) -> GrpoConfig:
        if self.dynamic_sampling.enabled and self.problems != "informative":
            raise ValueError(
                "dynamic_sampling.enabled draws more informative problems, so it needs problems: informative "
                f"(not {self.problems!r})"
            )
        return self


class TrainConfig(Strict):
    """How a round retrains its model. The top-level fields are the SFT phase's (names follow TRL's `SFTConfig`;
    `trl_args` passes anything else through); `grpo` holds the GRPO phase's."""

    method: TrainMethod = Field(
        default="sft",
        description="`sft`: rejection-sampling fine-tuning on the kept traces; `grpo`: GRPO on the round's problems "
        "with the verifiers as rewards; `sft_then_grpo`: both, GRPO starting from the SFT result.",
    )
    method_by_round: dict[int, TrainMethod] = Field(
        default={}, description="Per-round overrides of `method`, e.g. {1: sft, 2: sft, 3: grpo}."
    )
    max_steps: int = Field(default=300, ge=1, description="Optimizer steps of the SFT phase.")
    # Defaults are for pretrained models, which higher rates and long warm-ups on small data damage (measured on
    # SmolLM2-135M-Instruct: 1e-3 with batch 64 lowered pass@1 from 0.86 to 0.36); the tiny demo model sets its own.
    learning_rate: float = Field(default=1e-5, gt=0.0, description="Peak learning rate (1e-5 suits pretrained models).")
    per_device_train_batch_size: int = Field(default=8, ge=1, description="Examples per device per batch.")
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="Batches summed into one optimizer step.")
    warmup_steps: float = Field(
        default=0.05, ge=0, description="Warm-up: a share of max_steps when below 1 (0.05 = 5%), else a step count."
    )
    lr_scheduler_type: str = Field(default="linear", description="A transformers scheduler name (e.g. cosine).")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient norm clipping.")
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW weight decay.")
    include_seed_data: bool = Field(default=True, description="Train on the labelled seed split too.")
    include_previous_rounds: bool = Field(default=True, description="Train on every ancestor round's dataset.")
    use_cpu: bool | None = Field(default=None, description="None: CPU when no GPU is visible.")
    save_steps: int = Field(
        default=100,
        ge=1,
        description="Checkpoint every N optimizer steps; a training stage killed mid-way resumes from the last one.",
    )
    lora: LoraConfig | None = Field(default=None, description="Train a LoRA adapter instead of all weights.")
    launcher: list[str] | None = Field(
        default=None,
        description="Run each training phase as its own distributed job started by this command prefix, e.g. "
        "[accelerate, launch, --config_file, configs/accelerate/zero2.yaml] or [torchrun, --nproc_per_node, '8']; "
        "flywheel appends `-m flows.train_job <job.json>`. None trains inside the flow process.",
    )
    grpo: GrpoConfig = Field(default=GrpoConfig(), description="The GRPO phase (methods `grpo`, `sft_then_grpo`).")
    trl_args: dict[str, Any] = Field(default={}, description="Extra `trl.SFTConfig` arguments.")
    allow_untrained: bool = Field(
        default=False,
        description="Commit a round whose training trained 0 steps (e.g. GRPO with no informative problems), with "
        "`untrained: 1` in its manifest's metrics; False refuses to commit it.",
    )

    def method_for(self, round_id: int) -> TrainMethod:
        return self.method_by_round.get(round_id, self.method)

    def phases_for(self, round_id: int) -> tuple[Literal["sft", "grpo"], ...]:
        method = self.method_for(round_id)
        return ("sft", "grpo") if method == "sft_then_grpo" else (method,)


class EvaluateConfig(Strict):
    """How each round's model is scored on the held-out split (`test`)."""

    n_problems: int = Field(default=500, ge=1, description="Held-out problems scored each round.")
    k: int = Field(default=1, ge=1, description="Samples per held-out problem (pass@k, maj@k).")
    temperature: float = Field(default=0.0, ge=0.0, description="0 is greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling: 1.0 samples from all tokens.")
    max_tokens: int | None = Field(default=None, ge=1, description="None uses sample.max_tokens.")

    @model_validator(mode="after")
    def greedy_means_one_sample(self) -> EvaluateConfig:
        if self.temperature == 0.0 and self.k > 1:
            raise ValueError("k > 1 needs temperature > 0: greedy decoding gives k identical samples")
        return self


class EarlyStopConfig(Strict):
    """Stop a campaign on a plateau: `metric` has not beaten the best round so far by more than `min_delta`
    for `patience` consecutive rounds. Round 0 (the baseline) counts as the first best."""

    metric: str = Field(default="pass@1", description="A metric of every round's manifest, e.g. pass@1.")
    mode: Literal["max", "min"] = Field(default="max", description="`max`: higher is better; `min`: lower is.")
    patience: int = Field(default=2, ge=1, description="Consecutive rounds without improvement before stopping.")
    min_delta: float = Field(default=0.0, ge=0.0, description="An improvement must exceed this to count.")


class TaskRunnerConfig(Strict):
    """Where the verify tasks of a round run. Sampling, curation and training stay in the flow's process."""

    kind: Literal["local", "dask", "ray"] = Field(
        default="local",
        description="`local`: threads of the flow's process; `dask`/`ray`: a cluster (pip install 'flywheel[dask]' "
        "or 'flywheel[ray]').",
    )
    address: str | None = Field(
        default=None,
        description="Scheduler of a running cluster (dask: tcp://host:8786, ray: ray://host:10001 or `auto`); "
        "None starts a local cluster for the campaign.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Shards verified at once; for a local Dask/Ray cluster also its worker processes. None: 2 "
        "(each worker runs its own verifier pool of `verify.workers` processes).",
    )

    @model_validator(mode="after")
    def address_fits_kind(self) -> TaskRunnerConfig:
        if self.address is None:
            return self
        if self.kind == "local":
            raise ValueError("address is only for kind `dask` or `ray`")
        if self.kind == "dask" and "://" not in self.address:
            raise ValueError(f"a Dask scheduler address looks like tcp://host:8786, got {self.address!r}")
        if self.kind == "ray" and not (self.address == "auto" or self.address.startswith("ray://")):
            raise ValueError(f"a Ray address is `auto` or ray://host:10001, got {self.address!r}")
        return self


class OrchestrationConfig(Strict):
    """How rounds are run: early stop, retries of flaky steps, where verification runs. Changing this section
    does not change what a round computes, so a run may be continued with different values."""

    early_stop: EarlyStopConfig | None = Field(default=None, description="Plateau rule; None runs every round.")
    retries: int = Field(
        default=2,
        ge=0,
        description="Retries of sampling, verification and file-writing steps (never training or evaluation).",
    )
    retry_delay_s: float = Field(
        default=10.0, ge=0.0, description="Delay before the first retry; doubles on each further one."
    )
    task_runner: TaskRunnerConfig = Field(default=TaskRunnerConfig(), description="Where verify tasks run.")


class RunConfig(Strict):
    """A run: its name and store, the model of round 0, and one section per stage."""

    run_name: str = Field(pattern=RUN_NAME_PATTERN, description="Folder name of the run in the store.")
    store: str = Field(default="./runs", description="Local folder or fsspec URL of the run store.")
    seed: int = Field(default=0, description="Run seed: problem generation, selection, sampling and training.")
    rounds: int = Field(default=3, ge=0, description="Improvement rounds after round 0.")
    control: bool = Field(
        default=False,
        description="Ablation: rounds sample nothing and spend the same training steps on the labelled "
        "seed data alone, to show what the self-improvement loop adds.",
    )
    model: ModelConfig = Field(description="The policy model of round 0.")
    problems: ProblemsConfig = Field(default=ProblemsConfig(), description="The problem pool and its splits.")
    warm_start: TrainConfig | None = Field(
        default=None, description="Round 0 SFT on the labelled seed split; None evaluates the base model."
    )
    select: SelectConfig = Field(default=SelectConfig(), description="Which problems each round samples.")
    sample: SampleConfig = Field(default=SampleConfig(), description="Sampling of traces.")
    engine: EngineConfig = Field(default=EngineConfig(), description="vLLM engine settings.")
    verify: VerifyConfig = Field(default=VerifyConfig(), description="How verifiers run.")
    curate: CurateConfig = Field(default=CurateConfig(), description="What becomes training data.")
    train: TrainConfig = Field(default=TrainConfig(), description="How each improvement round retrains.")
    evaluate: EvaluateConfig = Field(default=EvaluateConfig(), description="Held-out evaluation of every round.")
    orchestration: OrchestrationConfig = Field(
        default=OrchestrationConfig(), description="Early stop, retries, where verification runs."
    )

    @model_validator(mode="after")
    def control_needs_labelled_data(self) -> RunConfig:
        if self.control and self.warm_start is None:
            raise ValueError("control: true needs a warm_start section (the labelled data it trains on)")
        return self

    @model_validator(mode="after")
    def warm_start_is_sft(self) -> RunConfig:
        if self.warm_start is not None and (self.warm_start.method != "sft" or self.warm_start.method_by_round):
            raise ValueError("warm_start trains on labelled data: its method must be `sft`")
        return self

    @model_validator(mode="after")
    def method_by_round_names_improvement_rounds(self) -> RunConfig:
        baseline = sorted(round_id for round_id in self.train.method_by_round if round_id < 1)
        if baseline:
            raise ValueError(
                f"train.method_by_round: rounds {baseline} are not improvement rounds (round 0 is the warm start, "
                "set by `warm_start`)"
            )
        return self
