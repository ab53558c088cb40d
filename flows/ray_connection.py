"""This process's connection to Ray, opened by `ray.init` and closed so that the next connection starts clean.

`ray.init()` without an address starts a local Ray instance and, when `RAY_AUTH_MODE` is unset, turns token
authentication on for the whole process: it sets `RAY_AUTH_MODE=token` in this process's environment and reloads
Ray's cached config from it. `ray.shutdown()` undoes neither. A later `ray.init(address=...)` to a cluster
started without token authentication then connects, but this process still demands a token on the calls the
cluster makes to it: the cluster's first call about each actor this process creates (to its owner) is refused
("Missing authorization header" in the driver's log), the cluster takes that for the owner's death and destroys
the actor before it runs ("all references to the actor were removed ... cancelled before it started running");
and every process started later from this one's environment (a `ray start` among them) inherits
the token mode. `RayConnection.close` puts `RAY_AUTH_MODE` back as it was and reloads Ray's config, the way Ray's
own tests reset it between sessions (ray/_private/authentication_test_utils.py).

What it does not do: it keeps the other variables `ray.init` sets (`PYTHONBREAKPOINT`, `RAY_USAGE_STATS_ENABLED`;
neither changes how a later connection behaves) and the token file `ray.init` may write to ~/.ray/auth_token.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"


class RayConnection:
    """`ray.init(address, **init_kwargs)` now; `close()` (or the end of a `with` block) shuts Ray down and puts
    back the authentication mode this process had before."""

    def __init__(self, address: str | None = None, **init_kwargs: Any) -> None:
        import ray

        self._auth_mode = os.environ.get(AUTH_MODE_VARIABLE)
        try:
            ray.init(address=address, **init_kwargs)
        except BaseException:
            self._restore_auth_mode()
            raise
        self._open = True

    def close(self) -> None:
        """Disconnect (and stop the local instance `ray.init` started, if any); a second call does nothing."""
        import ray

        if not self._open:
            return
        self._open = False
        try:
            ray.shutdown()
        finally:
            self._restore_auth_mode()

    def __enter__(self) -> RayConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _restore_auth_mode(self) -> None:
        from ray._raylet import AuthenticationTokenLoader, Config

        if self._auth_mode is None:
            os.environ.pop(AUTH_MODE_VARIABLE, None)
        else:
            os.environ[AUTH_MODE_VARIABLE] = self._auth_mode
        # Ray reads RAY_AUTH_MODE into its config once; reload the config first, then drop the cached token, the
        # order of ray._private.authentication_test_utils.reset_auth_token_state.
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
