"""``python -m deploy.local up|down|status|env|fetch|run`` — real Kafka + PostgreSQL, by hand.

``up`` starts both in the background (state in ``var/infra/state.json``; env ``NEXO_INFRA_DIR``
moves that directory) and prints::

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port>
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres

(``eval "$(python -m deploy.local env)"`` exports them; pytest then uses them instead of
starting its own). ``up`` with one of them down restarts it on its SAME data directory (on a new
port when the old one is taken; the new ports are printed): only ``down`` deletes data, and it
says so. ``fetch`` only downloads the Kafka jars (CI prefetch). ``run [--replicas N]`` starts
the whole distributed mode on top of them (``deploy/local/distributed.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from deploy.local._util import REPO_ROOT, InfraError, free_ports, pid_alive, port_open
from deploy.local.kafka import KafkaBroker, broker_ready, fetch_jars
from deploy.local.postgres import PostgresServer


def state_dir() -> Path:
    return Path(os.environ.get("NEXO_INFRA_DIR") or REPO_ROOT / "var" / "infra")


def state_file() -> Path:
    return state_dir() / "state.json"


def _load() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(state_file().read_text())
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


def _kafka_state(broker: KafkaBroker) -> dict[str, Any]:
    return {
        "pid": broker.pid,
        "port": broker.port,
        "controller_port": broker.controller_port,
        "workdir": str(broker.workdir),
        "bootstrap_servers": broker.bootstrap_servers,
        "version": broker.version,
        "log": str(broker.log_file),
    }


def _pg_state(pg: PostgresServer) -> dict[str, Any]:
    return {
        "pid": pg.pid,
        "port": pg.port,
        "workdir": str(pg.workdir),
        "dsn": pg.dsn,
        "version": pg.version,
        "log": str(pg.log_file),
    }


def _ports_free(*ports: int) -> bool:
    return not any(port_open("127.0.0.1", p, timeout=0.2) for p in ports)


def _restart_kafka(k: dict[str, Any]) -> KafkaBroker:
    """Start the broker again on its data directory; its old ports when they are free."""
    old = KafkaBroker.attach(
        workdir=Path(k["workdir"]),
        port=k["port"],
        controller_port=k["controller_port"],
        pid=k["pid"],
    )
    old.stop()  # a broker process that is alive but does not answer
    port, controller_port = int(k["port"]), int(k["controller_port"])
    if not _ports_free(port, controller_port):
        port, controller_port = free_ports(2)
    broker = KafkaBroker(
        workdir=Path(k["workdir"]), port=port, controller_port=controller_port, detached=True
    )
    broker.start()
    return broker


def _restart_postgres(p: dict[str, Any]) -> PostgresServer:
    """Start the cluster again on its data directory; its old port when it is free."""
    PostgresServer.attach(workdir=Path(p["workdir"]), port=p["port"]).stop()
    port = p["port"] if _ports_free(p["port"]) else None
    return PostgresServer(workdir=Path(p["workdir"]), port=port).start()


def cmd_up() -> int:
    state = _load()
    if state is not None:
        kafka_ok, pg_ok = _status(state)
        if kafka_ok and pg_ok:
            print("already running", file=sys.stderr)
            print("\n".join(_env_lines(state)))
            return 0
        # Never delete here: restart what is down on the same data (only `down` deletes).
        if not pg_ok:
            old_port = state["postgres"]["port"]
            pg = _restart_postgres(state["postgres"])
            state["postgres"] = _pg_state(pg)
            moved = "" if pg.port == old_port else f" (port {old_port} taken: now {pg.port})"
            print(
                f"PostgreSQL was down: restarted on its data in {pg.workdir}{moved}",
                file=sys.stderr,
            )
        if not kafka_ok:
            old_port = state["kafka"]["port"]
            broker = _restart_kafka(state["kafka"])
            state["kafka"] = _kafka_state(broker)
            moved = (
                "" if broker.port == old_port else f" (port {old_port} taken: now {broker.port})"
            )
            print(
                f"Kafka was down: restarted on its data in {broker.workdir}{moved}",
                file=sys.stderr,
            )
        state_file().write_text(json.dumps(state, indent=2) + "\n")
        print("\n".join(_env_lines(state)))
        return 0
    base = state_dir()
    base.mkdir(parents=True, exist_ok=True)
    # Directories left by an earlier run without a state file are reused, not wiped.
    pg = PostgresServer(workdir=base / "postgres")
    pg.start()
    broker = KafkaBroker(workdir=base / "kafka", detached=True)
    try:
        broker.start()
    except InfraError:
        pg.stop()
        raise
    state = {"kafka": _kafka_state(broker), "postgres": _pg_state(pg)}
    state_file().write_text(json.dumps(state, indent=2) + "\n")
    print("\n".join(_env_lines(state)))
    return 0


def stop_keeping_data(state: dict[str, Any]) -> None:
    """Stop both processes; their data stays (``up`` restarts them on it)."""
    k = state["kafka"]
    KafkaBroker.attach(
        workdir=Path(k["workdir"]),
        port=k["port"],
        controller_port=k["controller_port"],
        pid=k["pid"],
    ).stop()
    p = state["postgres"]
    PostgresServer.attach(workdir=Path(p["workdir"]), port=p["port"]).stop()


def cmd_down() -> int:
    state = _load()
    if state is None:
        print(f"nothing to stop (no {state_file()})", file=sys.stderr)
        return 0
    stop_keeping_data(state)
    k, p = state["kafka"], state["postgres"]
    shutil.rmtree(k["workdir"], ignore_errors=True)
    shutil.rmtree(p["workdir"], ignore_errors=True)
    state_file().unlink(missing_ok=True)
    print(
        f"stopped Kafka and PostgreSQL and DELETED their data ({k['workdir']}, {p['workdir']})",
        file=sys.stderr,
    )
    return 0


def cmd_status() -> int:
    state = _load()
    if state is None:
        print(f"not running (no {state_file()})")
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # the distributed mode has its own options
        from deploy.local.distributed import main as run_main

        return run_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=sorted([*COMMANDS, "run"]))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command]()
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
