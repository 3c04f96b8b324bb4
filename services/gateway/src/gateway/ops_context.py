"""What the ops API reads, whichever the mode: the services' health and outbox probes, the
broker (topics, group lag), the dead letters, and the audit log of DLQ actions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from contracts.topics import OPS_GROUP, consumer_groups
from gateway.ops_feed import EventFeed, ops_topics
from nexo_messaging import dlq as dlq_ops
from nexo_messaging.ops import GroupLagCache, outbox_stats
from nexo_messaging.transport import Transport
from service_defaults.auth import CurrentUser
from service_defaults.health import readiness, run_check
from service_defaults.logging import get_logger

log = get_logger("gateway.ops")

# Topic/lag figures come from the broker at most every LAG_CACHE_S; a request waits at most
# LAG_WAIT_S for fresh ones (else it gets the previous figures with their age).
LAG_CACHE_S = 3.0
LAG_WAIT_S = 2.5


class AuditLog:
    """Who did what to which dead letter, when: in memory, and appended to a JSON-lines file
    when ``GATEWAY_OPS_AUDIT_FILE`` is set."""

    def __init__(self, path: Path | None = None, size: int = 1000) -> None:
        self.path = path
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        if path is not None and path.exists():
            for line in path.read_text().splitlines()[-size:]:
                with contextlib.suppress(ValueError):
                    self.entries.append(json.loads(line))

    def record(self, user: CurrentUser, action: str, **what: Any) -> dict[str, Any]:
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "sub": user.sub,
            "name": user.name,
            "action": action,
            **what,
        }
        self.entries.append(entry)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps(entry, default=str) + "\n")
        log.info("ops audit", **entry)
        return entry


ServiceProbe = Callable[[], Awaitable[dict[str, Any]]]
OutboxProbe = Callable[[], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class OpsContext:
    """What the ops API needs, whichever the mode."""

    settings: Any
    transport: Transport
    feed: EventFeed
    audit: AuditLog
    service_probes: Mapping[str, ServiceProbe]
    outbox_probes: Mapping[str, OutboxProbe]
    database_kinds: Mapping[str, str]
    upstreams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    lag_cache: GroupLagCache | None = None

    def __post_init__(self) -> None:
        if self.lag_cache is None:
            self.lag_cache = GroupLagCache(self.transport, ttl=LAG_CACHE_S, wait=LAG_WAIT_S)

    async def close(self) -> None:
        if self.lag_cache is not None:
            await self.lag_cache.close()

    async def broker_health(self) -> dict[str, Any]:
        kind = self.transport.kind
        if kind == "memory":
            broker = getattr(self.transport, "broker", None)
            up = bool(getattr(broker, "available", True))
            return {"kind": "memory", "status": "ok" if up else "failing"}
        try:
            topics = await asyncio.wait_for(self.transport.list_topics(), 3.0)
            return {"kind": kind, "status": "ok", "topics": len(topics)}
        except Exception as exc:
            return {"kind": kind, "status": "failing", "error": f"{type(exc).__name__}: {exc}"}

    async def health(self) -> dict[str, Any]:
        names = list(self.service_probes)
        results = await asyncio.gather(*(run_check(self.service_probes[n]) for n in names))
        services: dict[str, Any] = {}
        databases: dict[str, Any] = {}
        for name, (ok, detail) in zip(names, results, strict=True):
            detail = detail if isinstance(detail, dict) else {"detail": detail}
            entry: dict[str, Any] = {"status": "up" if ok else "down", "detail": detail}
            if name in self.upstreams:
                entry["proxy"] = self.upstreams[name].snapshot()
            services[name] = entry
            checks = detail.get("checks") or (detail.get("upstream") or {}).get("checks") or {}
            db = checks.get("database")
            databases[name] = {
                "kind": self.database_kinds.get(name, "postgresql"),
                "status": "ok" if db == "ok" else ("unknown" if db is None else "failing"),
            }
        broker = await self.broker_health()
        pg = [d for d in databases.values() if d["kind"] == "postgresql"]
        postgresql = {
            "status": (
                "not used (embedded SQLite)"
                if not pg
                else "ok"
                if all(d["status"] == "ok" for d in pg)
                else "failing"
            ),
            "databases": databases,
        }
        all_up = all(s["status"] == "up" for s in services.values())
        return {
            "status": "ok" if all_up and broker["status"] == "ok" else "degraded",
            "services": services,
            "kafka": broker,
            "postgresql": postgresql,
            "ops_feed": self.feed.health(),
        }

    async def topics(self) -> dict[str, Any]:
        """Every partition of every topic with each group's lag, from the broker: the group's
        committed offsets vs the end offsets, whichever member (if any) owns the partition.
        ``gateway.ops`` is this gateway's own feed: on Kafka each replica reads every partition
        outside any group, so its lag is the end offsets vs what this process has read."""
        names = ops_topics()
        groups = {g: list(ts) for g, ts in consumer_groups().items()}
        groups[OPS_GROUP] = names  # every topic's end offsets
        assert self.lag_cache is not None
        snapshot = await self.lag_cache.get(groups)
        out: list[dict[str, Any]] = []
        for name in names:
            parts = sorted(
                (tp.partition, end) for tp, end in snapshot.ends.items() if tp.topic == name
            )
            entry: dict[str, Any] = {
                "topic": name,
                "partitions": [{"partition": p, "end_offset": e} for p, e in parts],
                "end_offset_total": sum(e for _, e in parts),
                "groups": {},
            }
            for group, topics in groups.items():
                if name not in topics:
                    continue
                if group == OPS_GROUP:
                    entry["groups"][group] = self.feed.lag(name, snapshot.ends)
                    continue
                lags = snapshot.lag(group, [name])
                if lags is None:
                    error = snapshot.errors.get(group) or snapshot.errors.get("*")
                    entry["groups"][group] = {"lag": None, "partitions": {}, "error": error}
                    continue
                per_partition = {tp.partition: n for tp, n in sorted(lags.items())}
                entry["groups"][group] = {
                    "lag": sum(per_partition.values()),
                    "partitions": per_partition,
                }
            out.append(entry)
        return {
            "topics": out,
            "lag_age_s": round(max(0.0, time.time() - snapshot.at), 3) if snapshot.at else None,
            "lag_error": snapshot.errors.get("*"),
        }

    async def outbox(self) -> dict[str, Any]:
        names = list(self.outbox_probes)
        results = await asyncio.gather(
            *(self.outbox_probes[n]() for n in names), return_exceptions=True
        )
        out: dict[str, Any] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                out[name] = {"status": "unknown", "error": f"{type(result).__name__}: {result}"}
            else:
                out[name] = {"status": "ok", **result}
        return {"services": out}

    async def dead_letters(self, topic: str | None, limit: int) -> dict[str, Any]:
        letters = await dlq_ops.list_dead_letters(self.transport, topic, limit)
        return {"dead_letters": [dataclasses.asdict(d) for d in letters]}


def embedded_probes(
    apps: Mapping[str, FastAPI],
) -> tuple[dict[str, ServiceProbe], dict[str, OutboxProbe]]:
    service_probes: dict[str, ServiceProbe] = {}
    outbox_probes: dict[str, OutboxProbe] = {}
    for name, sub in apps.items():

        def make(sub: FastAPI = sub, name: str = name) -> tuple[ServiceProbe, OutboxProbe]:
            async def probe() -> dict[str, Any]:
                ok, checks = await readiness(sub)
                return {"status": "ok" if ok else "failing", "checks": checks}

            async def outbox() -> dict[str, Any]:
                engine = sub.state.engine
                if engine is None:
                    raise RuntimeError("service not started")
                table = importlib.import_module(f"{name}.models").outbox
                stats = await outbox_stats(engine, table)
                return {
                    "backlog": stats["backlog"],
                    "oldest_age_s": round(stats["oldest_age_s"], 3),
                }

            return probe, outbox

        service_probes[name], outbox_probes[name] = make()
    return service_probes, outbox_probes


def proxy_outbox_probe(probe: ServiceProbe) -> OutboxProbe:
    """In proxy mode the backlog comes from the service's readiness (messaging relay)."""

    async def outbox() -> dict[str, Any]:
        detail = await probe()
        relay = (((detail.get("upstream") or {}).get("checks") or {}).get("messaging") or {}).get(
            "relay"
        )
        if not isinstance(relay, dict):
            raise RuntimeError(detail.get("error") or "no relay figures in the readiness answer")
        return {"backlog": relay.get("backlog"), "oldest_age_s": relay.get("oldest_age_s")}

    return outbox
