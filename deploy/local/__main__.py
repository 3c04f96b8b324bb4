"""``python -m deploy.local up|down|status|env|fetch`` — real Kafka + PostgreSQL for manual work.

``up`` starts both in the background (state in ``var/infra/state.json``) and prints::

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port>
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres

(``eval "$(python -m deploy.local env)"`` exports them; pytest then uses them instead of
starting its own). ``down`` stops both and deletes their data; ``fetch`` only downloads the
Kafka jars (CI prefetch).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from deploy.local._util import REPO_ROOT, InfraError, pid_alive
from deploy.local.kafka import KafkaBroker, broker_ready, fetch_jars
from deploy.local.postgres import PostgresServer

STATE_DIR = REPO_ROOT / "var" / "infra"
STATE_FILE = STATE_DIR / "state.json"


def _load() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    return data


def _env_lines(state: dict[str, Any]) -> list[str]:
    return [
        f"KAFKA_BOOTSTRAP_SERVERS={state['kafka']['bootstrap_servers']}",
        f"DATABASE_URL={state['postgres']['dsn']}",
    ]


def _status(state: dict[str, Any]) -> tuple[bool, bool]:
    k = state["kafka"]
    kafka_ok = pid_alive(k["pid"]) and broker_ready("127.0.0.1", k["port"])
    pg = PostgresServer.attach(
        workdir=Path(state["postgres"]["workdir"]), port=state["postgres"]["port"]
    )
    return kafka_ok, pg.is_ready()


def cmd_up() -> int:
    state = _load()
    if state is not None:
        kafka_ok, pg_ok = _status(state)
        if kafka_ok and pg_ok:
            print("already running", file=sys.stderr)
            print("\n".join(_env_lines(state)))
            return 0
        print("stale state found: cleaning up first", file=sys.stderr)
        cmd_down()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(workdir=STATE_DIR / "postgres")
    pg.start()
    broker = KafkaBroker(workdir=STATE_DIR / "kafka", detached=True)
    try:
        broker.start()
    except InfraError:
        pg.close()
        shutil.rmtree(pg.workdir, ignore_errors=True)
        raise
    state = {
        "kafka": {
            "pid": broker.pid,
            "port": broker.port,
            "controller_port": broker.controller_port,
            "workdir": str(broker.workdir),
            "bootstrap_servers": broker.bootstrap_servers,
            "version": broker.version,
            "log": str(broker.log_file),
        },
        "postgres": {
            "pid": pg.pid,
            "port": pg.port,
            "workdir": str(pg.workdir),
            "dsn": pg.dsn,
            "version": pg.version,
            "log": str(pg.log_file),
        },
    }
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")
    print("\n".join(_env_lines(state)))
    return 0


def cmd_down() -> int:
    state = _load()
    if state is None:
        print("nothing to stop (no var/infra/state.json)", file=sys.stderr)
        return 0
    k = state["kafka"]
    KafkaBroker.attach(
        workdir=Path(k["workdir"]),
        port=k["port"],
        controller_port=k["controller_port"],
        pid=k["pid"],
    ).stop()
    p = state["postgres"]
    PostgresServer.attach(workdir=Path(p["workdir"]), port=p["port"]).stop()
    shutil.rmtree(k["workdir"], ignore_errors=True)
    shutil.rmtree(p["workdir"], ignore_errors=True)
    STATE_FILE.unlink(missing_ok=True)
    print("stopped Kafka and PostgreSQL", file=sys.stderr)
    return 0


def cmd_status() -> int:
    state = _load()
    if state is None:
        print("not running (no var/infra/state.json)")
        return 1
    kafka_ok, pg_ok = _status(state)
    k, p = state["kafka"], state["postgres"]
    kafka_state = "up" if kafka_ok else "DOWN"
    print(f"kafka    {kafka_state}  {k['bootstrap_servers']}  pid {k['pid']}  log {k['log']}")
    print(f"postgres {'up' if pg_ok else 'DOWN'}  {p['dsn']}  log {p['log']}")
    print("\n".join(_env_lines(state)))
    return 0 if kafka_ok and pg_ok else 1


def cmd_env() -> int:
    state = _load()
    if state is None:
        print("not running: python -m deploy.local up", file=sys.stderr)
        return 1
    print("\n".join(f"export {line}" for line in _env_lines(state)))
    return 0


def cmd_fetch() -> int:
    print(fetch_jars(quiet=False))
    return 0


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "fetch": cmd_fetch,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command]()
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
