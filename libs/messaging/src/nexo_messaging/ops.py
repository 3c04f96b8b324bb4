"""Read-only helpers for the ops API/dashboard and the runtime's health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexo_messaging.relay_store import outbox_stats
from nexo_messaging.transport import TP, Transport

__all__ = ["GroupLagCache", "LagSnapshot", "consumer_lag", "outbox_stats"]


async def consumer_lag(transport: Transport, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Per ``topic/partition``: end offset minus the group's committed offset."""
    ends = await transport.end_offsets(topics)
    committed = await transport.committed(group, topics)
    return {
        f"{tp.topic}/{tp.partition}": max(0, end - committed.get(tp, 0)) for tp, end in ends.items()
    }


@dataclass(frozen=True)
class LagSnapshot:
    """End offsets of every partition of some topics and the committed offsets of some groups,
    as the broker reported them at ``at`` (``time.time()``)."""

    at: float
    ends: dict[TP, int] = field(default_factory=dict)
    committed: dict[str, dict[TP, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # group (or "*": end offsets) → error

    def lag(self, group: str, topics: Sequence[str]) -> dict[TP, int] | None:
        """Lag of ``group`` on every known partition of ``topics`` (no commit yet: the whole
        partition); None when the broker did not answer for it."""
        if group not in self.committed:
            return None
        done = self.committed[group]
        wanted = set(topics)
        return {
            tp: max(0, end - done.get(tp, 0)) for tp, end in self.ends.items() if tp.topic in wanted
        }

    def describe(self, group: str, topics: Sequence[str]) -> dict[str, Any]:
        """The health/ops shape: total, per ``topic/partition``, age, error."""
        lags = self.lag(group, topics)
        return {
            "total": sum(lags.values()) if lags is not None else None,
            "partitions": (
                {f"{tp.topic}/{tp.partition}": n for tp, n in sorted(lags.items())}
                if lags is not None
                else {}
            ),
            "age_s": round(max(0.0, time.time() - self.at), 3) if self.at else None,
            "error": self.errors.get(group) or self.errors.get("*"),
        }


class GroupLagCache:
    """Consumer-group lag of every partition, read from the broker (the group's committed
    offsets vs the end offsets), not from one member's assignment.

    Cheap: one refresh serves every caller for ``ttl`` seconds, concurrent callers share the
    refresh in flight. Time-bounded: a caller waits at most ``wait`` seconds for a refresh and
    otherwise gets the previous snapshot (the refresh goes on in the background, bounded by the
    transport's own call timeouts); a failed refresh keeps the previous figures with the error.
    """

    def __init__(self, transport: Transport, *, ttl: float = 5.0, wait: float = 2.0) -> None:
        self.transport = transport
        self.ttl = ttl
        self.wait = wait
        self._snapshot = LagSnapshot(at=0.0)
        self._groups: dict[str, tuple[str, ...]] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._tried = -float("inf")  # monotonic start of the last refresh (failed ones too)

    @property
    def snapshot(self) -> LagSnapshot:
        return self._snapshot

    async def get(self, groups: Mapping[str, Sequence[str]]) -> LagSnapshot:
        wanted = {g: tuple(ts) for g, ts in groups.items()}
        fresh = time.monotonic() - self._tried < self.ttl
        if fresh and all(self._groups.get(g) == ts for g, ts in wanted.items()):
            return self._snapshot
        if self._refresh is None or self._refresh.done():
            self._groups = wanted
            self._tried = time.monotonic()
            self._refresh = asyncio.create_task(self._load(wanted), name="group-lag-refresh")
        await asyncio.wait([self._refresh], timeout=self.wait)
        return self._snapshot

    async def _load(self, groups: dict[str, tuple[str, ...]]) -> None:
        topics = sorted({t for ts in groups.values() for t in ts})
        previous = self._snapshot
        errors: dict[str, str] = {}
        try:
            ends = await self.transport.end_offsets(topics)
        except Exception as exc:
            ends = previous.ends
            errors["*"] = f"{type(exc).__name__}: {exc}"[:300]
        names = list(groups)
        results = await asyncio.gather(
            *(self.transport.committed(g, groups[g]) for g in names), return_exceptions=True
        )
        committed: dict[str, dict[TP, int]] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                errors[name] = f"{type(result).__name__}: {result}"[:300]
                if name in previous.committed:
                    committed[name] = previous.committed[name]
            else:
                committed[name] = result
        at = time.time() if "*" not in errors else previous.at
        self._snapshot = LagSnapshot(at=at, ends=ends, committed=committed, errors=errors)

    async def close(self) -> None:
        task, self._refresh = self._refresh, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
