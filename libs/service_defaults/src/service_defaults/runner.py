"""Running one app with uvicorn from a ``python -m <svc>`` entry point."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

import uvicorn

from service_defaults.app import configure_logging_for
from service_defaults.db import DatabaseUnreachable, create_engine, wait_for_database
from service_defaults.health import begin_draining
from service_defaults.logging import get_logger
from service_defaults.settings import CommonSettings, ServiceSettings


async def _preflight(settings: ServiceSettings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await wait_for_database(engine, env_var=settings.env_name("database_url"))
    finally:
        await engine.dispose()


def preflight_database(settings: ServiceSettings) -> None:
    """Exit with one clear line when the database is unreachable (before uvicorn starts)."""
    try:
        asyncio.run(_preflight(settings))
    except DatabaseUnreachable as exc:
        raise SystemExit(str(exc)) from None


log = get_logger("service_defaults.runner")
DRAIN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain before the shutdown: the first SIGTERM/SIGINT turns readiness to
    503 at once and keeps serving for ``drain_seconds`` (so a load balancer or Kubernetes stops
    routing here while nothing is refused), then shuts down as uvicorn does (listener closed,
    requests in flight finished within ``timeout_graceful_shutdown``, lifespan exit). A second
    signal during the drain shuts down at once."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._drain_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig in DRAIN_SIGNALS and self._drain_timer is None and not self.should_exit:
            begin_draining()
            if self.drain_seconds > 0:
                log.info("draining before shutdown", signal=sig, seconds=self.drain_seconds)
                self._drain_timer = threading.Timer(
                    self.drain_seconds, super().handle_exit, (sig, frame)
                )
                self._drain_timer.daemon = True
                self._drain_timer.start()
                return
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        super().handle_exit(sig, frame)


def run_service(settings: CommonSettings, factory: str, *, host: str, port: int) -> None:
    """Configure logging, check the database, then serve ``factory`` (a zero-arg app factory
    given as ``"module:function"``) with uvicorn (:class:`DrainingServer`)."""
    configure_logging_for(settings)
    if isinstance(settings, ServiceSettings):
        preflight_database(settings)
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    DrainingServer(config, settings.shutdown_drain_seconds).run()
