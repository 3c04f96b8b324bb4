"""The local event log beyond the contract suite (whose scenarios, and the publisher killed in
``test_messaging_contract_crash.py``, run on it too): retention, single-process ownership with
resume from committed offsets, in-process wake-ups, one log per file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from nexo_messaging.errors import TransportUnavailable
from nexo_messaging.locallog import LocalLog, LocalLogTransport
from nexo_messaging.runtime import build_transport
from nexo_messaging.transport import TP, OutMessage, TopicSpec

PUBLISHER = Path(__file__).with_name("locallog_publisher.py")


def _msgs(topic: str, n: int, start: int = 0) -> list[OutMessage]:
    return [OutMessage(topic, str(i % 5).encode(), str(i).encode()) for i in range(start, n)]


async def test_retention_moves_log_start_and_keeps_offsets(tmp_path: Path) -> None:
    log = LocalLog(tmp_path / "events.db")
    t = LocalLogTransport(log)
    try:
        await t.ensure_topics([TopicSpec("short", 2, retention_ms=1000), TopicSpec("long", 2)])
        producer = t.producer()
        await producer.start()
        assert await producer.send_many(_msgs("short", 40) + _msgs("long", 40)) == [None] * 80
        ends = await t.end_offsets(["short", "long"])
        moved = await log.apply_retention(now_ms=int(time.time() * 1000) + 5000, chunk=7)
        assert moved == {tp: end for tp, end in ends.items() if tp.topic == "short"}
        assert await t.read_records("short") == []
        assert len(await t.read_records("long", limit=100)) == 40  # 7 days: kept
        assert await t.end_offsets(["short", "long"]) == ends  # offsets never restart
        await producer.send_many(_msgs("short", 45, 40))
        consumer = t.consumer("g", ["short"])
        await consumer.start()
        got = await consumer.getmany(timeout_ms=5000, max_records=100)
        assert sorted(int(r.value or b"") for recs in got.values() for r in recs) == list(
            range(40, 45)
        )
        assert all(recs[0].offset == ends[tp] for tp, recs in got.items())
        await consumer.stop()
    finally:
        log.close()


async def test_one_process_owns_the_file_and_restart_resumes_from_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    first = LocalLog(path)
    t = LocalLogTransport(first)
    await t.ensure_topics([TopicSpec("t", 1)])
    with pytest.raises(TransportUnavailable, match="in use"):
        await LocalLog(path).open()
    await t.producer().send_many(_msgs("t", 10))
    consumer = t.consumer("g", ["t"])
    await consumer.start()
    got = await consumer.getmany(timeout_ms=5000, max_records=4)
    await consumer.commit({TP("t", 0): got[TP("t", 0)][-1].offset + 1})
    first.close()  # "crash": the uncommitted records 4..9 must come again

    second = LocalLogTransport(LocalLog(path))
    try:
        assert await second.committed("g", ["t"]) == {TP("t", 0): 4}
        again = second.consumer("g", ["t"])
        await again.start()
        recs = (await again.getmany(timeout_ms=5000, max_records=100))[TP("t", 0)]
        assert [r.offset for r in recs] == list(range(4, 10))
        await again.stop()
    finally:
        second.log.close()


async def test_append_wakes_a_waiting_consumer_in_process(tmp_path: Path) -> None:
    log = LocalLog(tmp_path / "events.db", poll_fallback_s=60)
    t = LocalLogTransport(log)
    try:
        await t.ensure_topics([TopicSpec("w", 1)])
        consumer = t.consumer("g", ["w"])
        await consumer.start()
        assert await consumer.getmany(timeout_ms=10, max_records=10) == {}
        waiting = asyncio.create_task(consumer.getmany(timeout_ms=30_000, max_records=10))
        await asyncio.sleep(0)
        started = time.monotonic()
        await t.producer().send_many(_msgs("w", 1))
        got = await asyncio.wait_for(waiting, 30)
        assert [r.value for r in got[TP("w", 0)]] == [b"0"]
        assert time.monotonic() - started < 5  # woken, not the 60 s poll nor the 30 s timeout
        await consumer.stop()
    finally:
        log.close()


def test_local_transport_is_shared_per_file(tmp_path: Path) -> None:
    a = build_transport("local", local_path=tmp_path / "events.db")
    b = build_transport("local", local_path=tmp_path / "." / "events.db")
    c = build_transport("local", local_path=tmp_path / "other.db")
    assert isinstance(a, LocalLogTransport)
    assert isinstance(b, LocalLogTransport)
    assert isinstance(c, LocalLogTransport)
    assert a.log is b.log
    assert c.log is not a.log
    assert a.kind == "local"
    with pytest.raises(ValueError, match="local_path"):
        build_transport("local")
