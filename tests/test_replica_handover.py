"""Two replicas of each service as real processes (``deploy.local.distributed``) on real Kafka and
PostgreSQL; one gets SIGTERM while a write load is spread over both (like a load balancer: the
first try on one replica, retries rotate over both), with a burst of requests in flight at the
signal; then more load on the survivor alone. Measured for every service: readiness turns 503
while the process still serves, it exits cleanly (requests in flight answered, consumers
committed and left, relay claims released), the survivor owns every partition of the group
within 3 s of the exit, every request got a 2xx (no 5xx after the retries, never a 500), and the
auditor (``chaos.auditor``, polled until the consumers' effects settle) finds nothing lost or
doubled: sales — one sale per key, stock decremented exactly once per sale (``sales.stock``);
evidence — one production per (partida, date) cell, exactly one GPU per production
(``evidence.gpu-sync``); orders — one request and one validation per key, exactly one proposal
per validated request, reservations exact (``orders.proposals``). The workloads are the chaos
suite's (``chaos.workloads``)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.auditor import converge
from chaos.load import Outcome
from chaos.scenarios import Burst, Make
from chaos.workloads import (
    EvidenceWorkload,
    OrdersWorkload,
    Route,
    SalesWorkload,
    Workload,
)
from deploy.local._util import port_open
from deploy.local.distributed import (
    Infra,
    Proc,
    Supervisor,
    create_databases,
    database_url,
    describe_exit,
    service_port,
)
from deploy.local.provision import asyncpg_dsn
from nexo_messaging.kafka import SESSION_TIMEOUT_MS

pytestmark = pytest.mark.timeout(420)

GROUPS = {"evidence": "evidence.gpu-sync", "sales": "sales.stock", "orders": "orders.proposals"}
PARTITIONS = 3  # contracts: every consumed topic has 3
START_STOCK = 100_000
TAKEOVER_LIMIT_S = 2 * SESSION_TIMEOUT_MS / 1000
"""A clean exit leaves the group at once (takeover 0.01-0.35 s measured); a victim too slow to
leave (a loaded host: the same run gave a 5.3 s exit and a 3.04 s takeover) is found by the
session timeout, and then one rebalance hands its partitions over."""
LOAD_INTERVAL_S = {"sales": 0.05, "evidence": 0.1, "orders": 0.15}  # orders: create + validate
BURST_SIZE = {"sales": 20, "evidence": 10, "orders": 10}
LOAD_BEFORE_S = 1.0  # on both replicas before the signal
LOAD_AFTER_S = 1.5  # on the survivor alone after the takeover
AUDIT_DEADLINE_S = 60.0


def _workload(service: str) -> Workload:
    if service == "sales":
        return SalesWorkload(START_STOCK, "handover")
    return EvidenceWorkload() if service == "evidence" else OrdersWorkload()


def _base_port(service: str) -> int:
    for base in range(31000, 60000, 97):
        if not any(port_open("127.0.0.1", service_port(base, service, r), 0.1) for r in range(2)):
            return base
    raise RuntimeError("no free ports")


async def _ready_body(client: httpx.AsyncClient, proc: Proc) -> tuple[int, dict[str, Any]]:
    r = await client.get(f"{proc.url}/health/ready", timeout=5)
    return r.status_code, r.json()


async def _assigned(client: httpx.AsyncClient, proc: Proc, group: str) -> int:
    try:
        _, body = await _ready_body(client, proc)
    except (httpx.HTTPError, ValueError):
        return -1
    consumer = body.get("checks", {}).get("messaging", {}).get("consumers", {}).get(group, {})
    return int(consumer.get("assigned_partitions", -1))


@dataclass
class Balancer:
    """Writes of `workload` over the two replicas, alternating the first try (retries rotate to
    the other one); once the victim has exited, only to the survivor."""

    client: httpx.AsyncClient
    workload: Workload
    victim: Proc
    survivor: Proc
    victim_gone: bool = False
    tasks: list[asyncio.Task[Outcome]] = field(default_factory=list)

    def route(self, first: Proc) -> Route:
        if self.victim_gone:
            return Route(self.client, base_urls=[self.survivor.url])
        other = self.survivor if first is self.victim else self.victim
        return Route(self.client, base_urls=[first.url, other.url])

    def make(self, first: Proc) -> Make:
        return lambda i: self.workload.one(i, self.route(first))

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            first = self.victim if i % 2 == 0 else self.survivor
            self.tasks.append(asyncio.create_task(self.workload.one(i, self.route(first))))
            i += 1
            await asyncio.sleep(interval)


def test_the_groups_are_the_contracts_consumer_groups() -> None:
    from contracts.topics import TOPICS, consumer_groups

    groups = consumer_groups()
    for service, group in GROUPS.items():
        assert group in groups
        assert all(TOPICS[t].partitions == PARTITIONS for t in groups[group]), service


@pytest.mark.parametrize("service", ["sales", "evidence", "orders"])
async def test_sigterm_hands_over_to_the_other_replica(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path, service: str
) -> None:
    group = GROUPS[service]
    infra = Infra(
        kafka=kafka_bootstrap,
        dsn=asyncpg_dsn(postgres_url),
        db_prefix=f"ho_{uuid.uuid4().hex[:8]}_",
    )
    await asyncio.to_thread(create_databases, infra.dsn, [infra.database(service)])
    sup = Supervisor(
        infra,
        replicas=2,
        base_port=_base_port(service),
        services=(service,),
        gateway=False,
        log_dir=tmp_path,
    )
    workload = _workload(service)
    try:
        await asyncio.to_thread(sup.start)
        victim, survivor = sup.procs
        async with httpx.AsyncClient() as client:
            await workload.setup(Route(client, base_urls=[survivor.url]))

            # both members hold partitions before the fault
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                a = await _assigned(client, victim, group)
                b = await _assigned(client, survivor, group)
                if a > 0 and b > 0 and a + b == PARTITIONS:
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"group never settled over both replicas: {a} + {b}")

            balancer = Balancer(client, workload, victim, survivor)
            stop_load = asyncio.Event()
            loader = asyncio.create_task(balancer.run(LOAD_INTERVAL_S[service], stop_load))
            await asyncio.sleep(LOAD_BEFORE_S)
            burst = Burst(make=balancer.make(victim), size=BURST_SIZE[service])
            await burst.fire()  # on the victim, just before the signal
            in_flight = sum(not t.done() for t in balancer.tasks + burst.tasks)
            t_signal = time.monotonic()
            victim.signal(signal.SIGTERM)

            # readiness says 503 (draining) while the victim still serves
            saw_draining = False
            while victim.alive() and time.monotonic() - t_signal < 5:
                try:
                    status, body = await _ready_body(client, victim)
                    live = await client.get(f"{victim.url}/health/live", timeout=2)
                except httpx.HTTPError:
                    break
                if status == 503 and "shutdown" in body.get("checks", {}):
                    assert live.status_code == 200
                    saw_draining = True
                    break
                await asyncio.sleep(0.05)
            assert saw_draining, "readiness never answered 503 (draining) after SIGTERM"

            code = await asyncio.to_thread(victim.wait, 40)
            t_exit = time.monotonic()
            balancer.victim_gone = True
            assert describe_exit(code) == "clean", f"victim exit {code}"

            # the survivor takes over every partition
            t_takeover = None
            while time.monotonic() - t_exit < 15:
                if await _assigned(client, survivor, group) == PARTITIONS:
                    t_takeover = time.monotonic()
                    break
                await asyncio.sleep(0.05)
            assert t_takeover is not None, "the survivor never owned all partitions"
            takeover_s = t_takeover - t_exit

            await asyncio.sleep(LOAD_AFTER_S)
            stop_load.set()
            await loader
            await asyncio.gather(*balancer.tasks)
            await burst.outcomes()
            settled_s = await _audit(infra, workload)

        log = victim.log_path.read_text()
        assert "messaging stopped" in log
        record = {
            "service": service,
            "operations": len(workload.outcomes),
            "retried": sum(o.attempts > 1 for o in workload.outcomes),
            "retried_after": dict(
                Counter(str(s) for o in workload.outcomes for s in o.statuses[:-1])
            ),
            "in_flight_at_signal": in_flight,
            "drain_seen": saw_draining,
            "exit_after_signal_s": round(t_exit - t_signal, 2),
            "takeover_after_exit_s": round(takeover_s, 2),
            "audit_settled_s": round(settled_s, 2),
        }
        print("handover", json.dumps(record))
        assert in_flight > 0, record
        assert takeover_s <= TAKEOVER_LIMIT_S, record
    finally:
        await asyncio.to_thread(sup.stop)


async def _audit(infra: Infra, workload: Workload) -> float:
    """Every write answered 2xx and never 500; the auditor agrees within the deadline (returns
    how long its effects took to settle after the load)."""
    failed = [o for o in workload.outcomes if not o.ok or o.saw_500]
    assert not failed, [(o.path, o.key, o.statuses, str(o.body)[:200]) for o in failed[:5]]
    dsn = database_url(infra.dsn, infra.database(workload.service)).replace(
        "postgresql+asyncpg://", "postgresql://"
    )
    audit, took = await converge(lambda: workload.audit(dsn), AUDIT_DEADLINE_S)
    assert took is not None, (audit.duplicates, audit.lost, audit.problems)
    return took
