"""Jaeger v2 all-in-one (in-memory storage) as a local process: OTLP/HTTP in, query API out.

The binary is built once from the Go module proxy (:mod:`deploy.local.gotools`). Ports are
chosen by the caller (tests use free ports; ``TRACING=1 make infra-up`` the defaults 4318 and
16686). Only OTLP over HTTP is received — what the services export.

    python -m deploy.local.jaeger [run|up|down] [--otlp-port 4318] [--query-port 16686]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.local import gotools
from deploy.local._util import pid_alive

CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{host}:{health_port}"
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "{host}:{query_port}"
    grpc:
      endpoint: "{host}:{query_grpc_port}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 20000
receivers:
  otlp:
    protocols:
      http:
        endpoint: "{host}:{otlp_port}"
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


@dataclass
class JaegerHandle:
    process: subprocess.Popen[bytes]
    otlp_endpoint: str
    query_url: str
    workdir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_jaeger(
    otlp_port: int,
    query_port: int,
    query_grpc_port: int,
    health_port: int,
    *,
    host: str = "127.0.0.1",
    workdir: Path | None = None,
    ready_timeout: float = 60.0,
    detach: bool = False,
) -> JaegerHandle:
    """Start Jaeger and wait until its query API answers."""
    binary = gotools.ensure_jaeger()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="nexo-jaeger-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "jaeger.yaml"
    config.write_text(
        CONFIG.format(
            host=host,
            otlp_port=otlp_port,
            query_port=query_port,
            query_grpc_port=query_grpc_port,
            health_port=health_port,
        )
    )
    log = (workdir / "jaeger.log").open("ab")
    process = subprocess.Popen(
        [str(binary), "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=detach,  # `up`: outlives this command, stopped by `down`
        # Jaeger would trace itself to localhost:4317 (and wait for it when stopping)
        env={**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "none"},
    )
    handle = JaegerHandle(
        process, f"http://{host}:{otlp_port}", f"http://{host}:{query_port}", workdir
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jaeger exited ({process.returncode}); see {workdir}/jaeger.log")
        try:
            with urllib.request.urlopen(f"{handle.query_url}/api/services", timeout=2) as r:
                json.load(r)
                return handle
        except OSError:
            time.sleep(0.2)
    handle.stop()
    raise RuntimeError(f"jaeger not ready in {ready_timeout} s; see {workdir}/jaeger.log")


def _pid_file() -> Path:
    from deploy.local.__main__ import state_dir

    return state_dir() / "jaeger.json"


def up(otlp_port: int, query_port: int) -> None:
    """Start Jaeger detached (``TRACING=1 make infra-up``); ``down`` stops it."""
    info = _pid_file()
    if info.exists():
        state = json.loads(info.read_text())
        if pid_alive(state["pid"]):
            print(f"jaeger already running (pid {state['pid']}): {state['query_url']}")
            return
    info.parent.mkdir(parents=True, exist_ok=True)
    handle = start_jaeger(
        otlp_port,
        query_port,
        query_port - 1,
        otlp_port + 9000,
        workdir=info.parent / "jaeger",
        detach=True,
    )
    info.write_text(
        json.dumps(
            {
                "pid": handle.process.pid,
                "query_url": handle.query_url,
                "otlp_endpoint": handle.otlp_endpoint,
            }
        )
    )
    print(f"jaeger (pid {handle.process.pid}): query API {handle.query_url}/api")
    print("for the services and the gateway:")
    print(f"  export OTEL_EXPORTER_OTLP_ENDPOINT={handle.otlp_endpoint}")
    print(f"  export GATEWAY_TRACES_QUERY_URL={handle.query_url}")


def down() -> None:
    info = _pid_file()
    if not info.exists():
        return
    pid = json.loads(info.read_text())["pid"]
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    info.unlink()
    print(f"jaeger stopped (pid {pid})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "up", "down"], nargs="?", default="run")
    parser.add_argument("--otlp-port", type=int, default=4318)
    parser.add_argument("--query-port", type=int, default=16686)
    args = parser.parse_args()
    if args.command == "up":
        up(args.otlp_port, args.query_port)
        return
    if args.command == "down":
        down()
        return
    handle = start_jaeger(args.otlp_port, args.query_port, args.query_port - 1, 13133)
    print(f"jaeger: OTLP {handle.otlp_endpoint}, UI/query {handle.query_url}", flush=True)
    try:
        handle.process.wait()
    except KeyboardInterrupt:
        handle.stop()


if __name__ == "__main__":
    main()
