"""Online backup and restore of the embedded mode's data (``make backup`` / ``make restore``).

``python -m gateway.backup create [DEST]`` copies, while the system runs, every SQLite database
of the embedded mode (``<data_dir>/{evidence,sales,orders}.db``) and the event log
(``<data_dir>/events.db``) with SQLite's online backup API (each file one consistent snapshot).
``python -m gateway.backup restore SRC`` puts such a copy back into ``data_dir`` (the system
must be stopped).

The copies are taken at different moments; the order makes them converge after a restore:

1. ``T0``: the consumer groups' committed offsets are read from the live log;
2. ``T1``: the service databases are copied;
3. ``T2``: the log is copied, and in the copy each group's offsets are set back to their
   ``T0`` values (groups without a ``T0`` offset start from the beginning).

* Producer side: the relay marks an outbox row published only after the log committed the
  record, so every row a database copy (``T1``) shows as published is in the log copy
  (``T2 > T1``); rows not yet marked are published again by the relay after the restore (a
  duplicate at most, which the inbox skips).
* Consumer side: an offset is committed only after the effect (with its inbox row) committed, so
  the effects of every offset committed at ``T0`` are in the database copies (``T1 > T0``);
  records after ``T0`` are delivered again after the restore and the inbox skips those whose
  effects the copies already hold.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.settings import SERVICES, GatewaySettings
from service_defaults.settings import load_settings

MANIFEST = "manifest.json"
LOG_FILE = "events.db"


def _copy(source: Path, dest: Path) -> None:
    """One consistent snapshot of ``source`` (online: other processes may write meanwhile)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        src.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)  # all pages in one step: one read transaction, one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
    finally:
        dst.close()
        src.close()


def _group_offsets(log: Path) -> dict[tuple[str, str, int], int]:
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        rows = conn.execute('SELECT group_id, topic, partition, "offset" FROM group_offsets')
        return {(g, t, p): o for g, t, p, o in rows}
    except sqlite3.OperationalError:  # a log that never had a consumer
        return {}
    finally:
        conn.close()


def _rewind(log_copy: Path, offsets: dict[tuple[str, str, int], int]) -> None:
    conn = sqlite3.connect(log_copy)
    try:
        with conn:
            current = conn.execute('SELECT group_id, topic, partition, "offset" FROM group_offsets')
            for g, t, p, o in list(current):
                before = offsets.get((g, t, p))
                if before is None:
                    conn.execute(
                        "DELETE FROM group_offsets WHERE group_id = ? AND topic = ? "
                        "AND partition = ?",
                        (g, t, p),
                    )
                elif before < o:
                    conn.execute(
                        'UPDATE group_offsets SET "offset" = ? WHERE group_id = ? AND topic = ? '
                        "AND partition = ?",
                        (before, g, t, p),
                    )
    except sqlite3.OperationalError:
        pass  # no group_offsets table: nothing to rewind
    finally:
        conn.close()


def files(settings: GatewaySettings) -> tuple[list[Path], Path]:
    """The service databases and the event log of the embedded mode."""
    dbs = [(settings.data_dir / f"{service}.db").resolve() for service in SERVICES]
    return dbs, settings.event_log_path()


def create(settings: GatewaySettings, dest: Path) -> Path:
    dbs, log = files(settings)
    missing = [str(p) for p in [*dbs, log] if not p.exists()]
    if missing:
        raise SystemExit(f"nothing to back up: missing {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=False)
    offsets = _group_offsets(log)  # T0
    started = time.time()
    for db in dbs:  # T1
        _copy(db, dest / db.name)
    _copy(log, dest / LOG_FILE)  # T2
    _rewind(dest / LOG_FILE, offsets)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.time() - started, 3),
        "databases": [db.name for db in dbs],
        "event_log": LOG_FILE,
        "order": "group offsets (T0), service databases (T1), event log (T2, offsets set to T0)",
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return dest


def _in_use(log: Path) -> bool:
    lock = Path(f"{log}.lock")
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def restore(settings: GatewaySettings, source: Path) -> None:
    manifest = json.loads((source / MANIFEST).read_text())
    dbs, log = files(settings)
    if _in_use(log):
        raise SystemExit(f"the system is running on {settings.data_dir}: stop it first")
    targets = {db.name: db for db in dbs} | {manifest["event_log"]: log}
    for name in targets:
        if not (source / name).exists():
            raise SystemExit(f"incomplete backup: {source / name} is missing")
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        tmp = target.with_name(f"{target.name}.restoring")
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.backup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="online backup of the embedded mode's data")
    c.add_argument("dest", nargs="?", type=Path, help="new directory (default backups/<time>)")
    r = sub.add_parser("restore", help="put a backup back (system stopped)")
    r.add_argument("source", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings(GatewaySettings)
    if args.command == "create":
        dest = args.dest or Path("backups") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        print(f"backup written to {create(settings, dest)}")
    else:
        restore(settings, args.source)
        print(f"restored {args.source} into {settings.data_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
