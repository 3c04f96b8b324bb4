"""The SQLite file of the local event log (:mod:`nexo_messaging.locallog`): schema, connections,
the exclusive process lock, and the blocking reads and writes.

Every ``*_sync`` method blocks: the log runs writes on :attr:`LogFile.writer` (one thread, one
connection), reads on :attr:`LogFile.readers` (a connection per thread, ``query_only``), or
inline on the event loop where that is cheaper (``synchronous=NORMAL``). The caches the log keeps
(topics, partition starts and ends) are passed in and only read here; the log applies what a
write returns on the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexo_messaging.errors import TransportUnavailable
from nexo_messaging.memory import partition_for
from nexo_messaging.transport import TP, Headers, Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL,
    retention_ms INTEGER);
CREATE TABLE IF NOT EXISTS partitions (
    tid INTEGER NOT NULL, partition INTEGER NOT NULL, log_start INTEGER NOT NULL DEFAULT 0,
    log_end INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tid, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY, tid INTEGER NOT NULL, partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL, ts INTEGER NOT NULL, key BLOB, value BLOB, headers TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS records_tpo ON records (tid, partition, "offset");
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID;
"""


def _enc_headers(headers: Headers) -> str | None:
    if not headers:
        return None
    return json.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _dec_headers(raw: str | None) -> Headers:
    if not raw:
        return []
    return [(k, v.encode("latin-1")) for k, v in json.loads(raw)]


@dataclass(frozen=True)
class TopicMeta:
    id: int
    partitions: int
    retention_ms: int | None


Changes = tuple[dict[str, TopicMeta], dict[TP, int], dict[TP, int]]
"""What a committed write changed: new topics, new partition ends, moved partition starts."""


class LogFile:
    """Connections, threads and the file lock of one log file (closing it must not need the
    log itself: the log's finalizer calls :meth:`close`)."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="locallog-writer")
        self.readers = ThreadPoolExecutor(2, thread_name_prefix="locallog-reader")
        self._conns: list[sqlite3.Connection] = []
        self._lock_fd: int | None = None
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()

    def close(self) -> None:
        self.writer.shutdown(wait=False)
        self.readers.shutdown(wait=False)
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- connections --------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        self._conns.append(conn)
        return conn

    def open_sync(self) -> tuple[dict[str, TopicMeta], dict[TP, int], dict[TP, int]]:
        """Lock the file for this process, create the schema; return the topics and each
        partition's log start and end."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TransportUnavailable(
                f"the event log {self.path} is in use by another process"
            ) from None
        self._lock_fd = fd
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the event loop
        conn.executescript(_SCHEMA)
        self._wconn = conn
        topics: dict[str, TopicMeta] = {}
        starts: dict[TP, int] = {}
        ends: dict[TP, int] = {}
        names: dict[int, str] = {}
        for tid, name, parts, retention in conn.execute(
            "SELECT id, name, partitions, retention_ms FROM topics"
        ):
            topics[name] = TopicMeta(tid, parts, retention)
            names[tid] = name
        for tid, p, start, end in conn.execute(
            "SELECT tid, partition, log_start, log_end FROM partitions"
        ):
            tp = TP(names[tid], p)
            starts[tp] = start
            ends[tp] = end
        return topics, starts, ends

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
        return conn

    def checkpoint_sync(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "ckpt", None)
        if conn is None:
            conn = self._local.ckpt = self._connect()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- writes (the writer thread, or inline) ------------------------------------------------
    def write_sync(
        self,
        ops: list[tuple[str, Any]],
        topics: dict[str, TopicMeta],
        ends: dict[TP, int],
        default_partitions: int,
        rr: itertools.count[int],
    ) -> Changes:
        """Every operation in ONE transaction: ``("topics", [(name, partitions, retention)])``,
        ``("append", [OutMessage])``, ``("commit", (group_id, {TP: offset}))``."""
        conn = self._wconn
        assert conn is not None
        new_topics: dict[str, TopicMeta] = {}
        new_ends: dict[TP, int] = {}
        commits: dict[tuple[str, TP], int] = {}
        rows: list[tuple[Any, ...]] = []
        now_ms = int(time.time() * 1000)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind, payload in ops:
                if kind == "topics":
                    for name, parts, retention in payload:
                        if name not in topics and name not in new_topics:
                            new_topics[name] = self._create_topic_sync(conn, name, parts, retention)
                elif kind == "append":
                    for m in payload:
                        meta = topics.get(m.topic) or new_topics.get(m.topic)
                        if meta is None:
                            meta = self._create_topic_sync(conn, m.topic, default_partitions, None)
                            new_topics[m.topic] = meta
                        p = partition_for(m.key, meta.partitions, next(rr))
                        tp = TP(m.topic, p)
                        off = new_ends.get(tp)
                        if off is None:
                            off = ends.get(tp, 0)
                        new_ends[tp] = off + 1
                        rows.append(
                            (meta.id, p, off, now_ms, m.key, m.value, _enc_headers(m.headers))
                        )
                else:  # commit
                    group_id, offsets = payload
                    for tp, o in offsets.items():
                        commits[(group_id, tp)] = o
            if rows:
                conn.executemany(
                    'INSERT INTO records (tid, partition, "offset", ts, key, value, headers) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.executemany(
                    "UPDATE partitions SET log_end = ? WHERE tid = ? AND partition = ?",
                    [
                        (end, (topics.get(tp.topic) or new_topics[tp.topic]).id, tp.partition)
                        for tp, end in new_ends.items()
                    ],
                )
            if commits:
                conn.executemany(
                    'INSERT INTO group_offsets (group_id, topic, partition, "offset") '
                    'VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "offset" = excluded."offset"',
                    [(g, tp.topic, tp.partition, o) for (g, tp), o in commits.items()],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return new_topics, new_ends, {}

    def _create_topic_sync(
        self, conn: sqlite3.Connection, name: str, partitions: int, retention_ms: int | None
    ) -> TopicMeta:
        cur = conn.execute(
            "INSERT INTO topics (name, partitions, retention_ms) VALUES (?, ?, ?)",
            (name, partitions, retention_ms),
        )
        tid = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO partitions (tid, partition) VALUES (?, ?)",
            [(tid, p) for p in range(partitions)],
        )
        return TopicMeta(tid, partitions, retention_ms)

    def retention_cut_sync(
        self,
        now_ms: int,
        topics: dict[str, TopicMeta],
        starts: dict[TP, int],
        ends: dict[TP, int],
        default_retention_ms: int,
    ) -> dict[TP, int]:
        """Move each partition's log start past the records older than the topic's retention
        (one short transaction); the rows are deleted afterwards, in chunks."""
        conn = self._wconn
        assert conn is not None
        moved: dict[TP, int] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name, meta in topics.items():
                cutoff = now_ms - (meta.retention_ms or default_retention_ms)
                for p in range(meta.partitions):
                    tp = TP(name, p)
                    row = conn.execute(
                        'SELECT "offset" FROM records WHERE tid = ? AND partition = ? '
                        'AND "offset" >= ? AND ts >= ? ORDER BY "offset" LIMIT 1',
                        (meta.id, p, starts.get(tp, 0), cutoff),
                    ).fetchone()
                    start = int(row[0]) if row else ends.get(tp, 0)
                    if start > starts.get(tp, 0):
                        conn.execute(
                            "UPDATE partitions SET log_start = ? WHERE tid = ? AND partition = ?",
                            (start, meta.id, p),
                        )
                        moved[tp] = start
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return moved

    def delete_chunk_sync(self, tid: int, partition: int, below: int, limit: int) -> int:
        conn = self._wconn
        assert conn is not None
        cur = conn.execute(
            "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE tid = ? "
            'AND partition = ? AND "offset" < ? LIMIT ?)',
            (tid, partition, below, limit),
        )
        return int(cur.rowcount)

    # -- reads (a reader thread, or inline) ---------------------------------------------------
    def read_sync(
        self, wants: list[tuple[TP, int, int]], topics: dict[str, TopicMeta]
    ) -> dict[TP, list[Record]]:
        """Up to ``limit`` records of each ``(partition, from offset, limit)``."""
        conn = self._reader_conn()
        out: dict[TP, list[Record]] = {}
        for tp, start, limit in wants:
            meta = topics[tp.topic]
            rows = conn.execute(
                'SELECT "offset", ts, key, value, headers FROM records WHERE tid = ? '
                'AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (meta.id, tp.partition, start, limit),
            ).fetchall()
            if rows:
                out[tp] = [
                    Record(tp.topic, tp.partition, o, k, v, _dec_headers(h), ts)
                    for o, ts, k, v, h in rows
                ]
        return out

    def committed_sync(self, group_id: str) -> dict[TP, int]:
        rows = self._reader_conn().execute(
            'SELECT topic, partition, "offset" FROM group_offsets WHERE group_id = ?', (group_id,)
        )
        return {TP(t, p): o for t, p, o in rows}
