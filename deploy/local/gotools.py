"""Go tools built from the Go module proxy, cached under ``~/.cache/nexo/tools/bin``.

* ``jaeger`` (v2 all-in-one: OTLP in, query API/UI out, in-memory storage): the tracing backend
  of ``TRACING=1 make infra-up`` and of the tracing integration test;
* ``promtool``: ``promtool test rules deploy/prometheus/alerts.test.yml``.

Jaeger's go.mod has a ``replace`` directive, which ``go install pkg@version`` refuses, so it is
built inside a small module of its own that repeats that directive. A built binary is reused
(delete it to rebuild); the first build takes minutes on two cores.

    python -m deploy.local.gotools jaeger promtool   # build what is missing, print the paths
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

JAEGER_VERSION = "v1.75.0"
PROMTOOL_VERSION = "v0.316.0"  # Prometheus 3.x as a Go module version
TOOLS_DIR = Path(os.environ.get("NEXO_TOOLS_DIR", Path.home() / ".cache" / "nexo" / "tools"))
BIN_DIR = TOOLS_DIR / "bin"
_JAEGER_REPLACES = ("github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0",)


def go_binary() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        raise RuntimeError("Go is needed to build the tools (https://go.dev/dl/)")
    return found


def _run(args: list[str], cwd: Path | None = None) -> None:
    env = {
        **os.environ,
        "GOBIN": str(BIN_DIR),
        "GOFLAGS": os.environ.get("GOFLAGS", "-trimpath"),
        "CGO_ENABLED": "0",
    }
    subprocess.run(args, cwd=cwd, env=env, check=True)


def tool_path(name: str) -> Path:
    return BIN_DIR / name


def ensure_promtool() -> Path:
    path = tool_path("promtool")
    if not path.exists():
        BIN_DIR.mkdir(parents=True, exist_ok=True)
        _run(
            [
                go_binary(),
                "install",
                f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}",
            ]
        )
    return path


def ensure_jaeger() -> Path:
    path = tool_path("jaeger")
    if path.exists():
        return path
    go = go_binary()
    module = TOOLS_DIR / f"jaeger-{JAEGER_VERSION}"
    module.mkdir(parents=True, exist_ok=True)
    if not (module / "go.mod").exists():
        _run([go, "mod", "init", "nexo.local/jaeger-tool"], cwd=module)
        for replace in _JAEGER_REPLACES:
            _run([go, "mod", "edit", f"-replace={replace}"], cwd=module)
    _run([go, "get", f"github.com/jaegertracing/jaeger/cmd/jaeger@{JAEGER_VERSION}"], cwd=module)
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    _run([go, "build", "-o", str(tmp), "github.com/jaegertracing/jaeger/cmd/jaeger"], cwd=module)
    tmp.replace(path)
    return path


def main(argv: list[str]) -> int:
    builders = {"jaeger": ensure_jaeger, "promtool": ensure_promtool}
    for name in argv or list(builders):
        if name not in builders:
            print(f"unknown tool {name!r}; known: {', '.join(builders)}", file=sys.stderr)
            return 2
        print(builders[name]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
