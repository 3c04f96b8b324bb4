"""``python -m deploy.local run`` as a user runs it: banner with URLs and a token, then Ctrl-C
(SIGINT to the command) stops every child — gateway first — and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from deploy.local._util import REPO_ROOT, port_open
from deploy.local.distributed import SERVICES, gateway_port, service_port

pytestmark = pytest.mark.timeout(420)


def _base_port() -> int:
    for base in range(47000, 60000, 83):
        ports = [gateway_port(base, 0), *(service_port(base, s, 0) for s in SERVICES)]
        if not any(port_open("127.0.0.1", p, 0.1) for p in ports):
            return base
    raise RuntimeError("no free ports")


def test_run_prints_the_banner_and_ctrl_c_stops_everything(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    base = _base_port()
    out = tmp_path / "stdout.txt"
    err = tmp_path / "stderr.txt"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": postgres_url}
    prefix = f"cli_{uuid.uuid4().hex[:8]}_"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploy.local",
                "run",
                "--base-port",
                str(base),
                "--db-prefix",
                prefix,
                "--log-dir",
                str(tmp_path / "log"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=o,
            stderr=e,
        )
        try:
            deadline = time.monotonic() + 300
            while "Ctrl-C stops everything" not in out.read_text():
                assert proc.poll() is None, err.read_text()[-3000:]
                assert time.monotonic() < deadline, err.read_text()[-3000:]
                time.sleep(0.5)
            banner = out.read_text()
            assert f"http://127.0.0.1:{gateway_port(base, 0)}" in banner
            assert "Development JWT" in banner
            assert f"created databases: {prefix}evidence" in err.read_text()
            ports = [gateway_port(base, 0), *(service_port(base, s, 0) for s in SERVICES)]
            assert all(port_open("127.0.0.1", p, 0.5) for p in ports)

            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=90) == 0, err.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stopped = next(line for line in err.read_text().splitlines() if line.startswith("stopped:"))
    assert stopped.startswith("stopped: gateway-1 (clean)"), stopped
    assert stopped.count("(clean)") == 4, stopped
    assert not any(port_open("127.0.0.1", p, 0.2) for p in ports)
    logs = tmp_path / "log"
    assert {p.name for p in logs.iterdir()} == {f"{s}-1.log" for s in (*SERVICES, "gateway")}
