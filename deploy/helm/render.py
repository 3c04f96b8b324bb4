"""``helm template`` of the chart, parsed: what the chart tests (and a curious reader) use.

The helm binary: ``$NEXO_HELM``, else ``~/.cache/nexo/tools/bin/helm`` (``python -m
deploy.helm.render --build`` installs helm v4 there from the Go module proxy, as ``.ci/run``
does), else ``helm`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "nexo"
HELM_VERSION = "v4.3.2"
HELM_MODULE = f"helm.sh/helm/v4/cmd/helm@{HELM_VERSION}"
TOOLS_BIN = Path(os.environ.get("NEXO_TOOLS_BIN") or Path.home() / ".cache/nexo/tools/bin")
GO = os.environ.get("NEXO_GO") or shutil.which("go") or "/usr/local/go/bin/go"


class HelmError(RuntimeError):
    pass


def helm_binary() -> str | None:
    explicit = os.environ.get("NEXO_HELM")
    if explicit:
        return explicit
    cached = TOOLS_BIN / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which("helm")


def build_helm(timeout: float = 1800) -> str:
    """``go install`` helm into ``TOOLS_BIN`` (a no-op when it is there)."""
    cached = TOOLS_BIN / "helm"
    if cached.is_file():
        return str(cached)
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(TOOLS_BIN), "GOFLAGS": "-buildvcs=false"}
    subprocess.run([GO, "install", HELM_MODULE], env=env, check=True, timeout=timeout)
    return str(cached)


def template(
    values_files: Sequence[Path | str] = (),
    sets: Mapping[str, str | bool | int] | None = None,
    *,
    release: str = "nexo",
    namespace: str = "nexo",
) -> list[dict[str, Any]]:
    """The rendered objects (empty documents dropped). `sets`: strings as ``--set-string``,
    booleans and integers as typed ``--set``."""
    helm = helm_binary()
    if helm is None:
        raise HelmError("helm not found (python -m deploy.helm.render --build)")
    args = [helm, "template", release, str(CHART), "--namespace", namespace]
    for f in values_files:
        args += ["--values", str(f)]
    for key, value in (sets or {}).items():
        if isinstance(value, bool):  # typed: a string "false" would be truthy in templates
            args += ["--set", f"{key}={str(value).lower()}"]
        elif isinstance(value, int):
            args += ["--set", f"{key}={value}"]
        else:
            args += ["--set-string", f"{key}={value}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise HelmError(proc.stderr.strip() or proc.stdout.strip())
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


SECRET_PLACEHOLDER = "secret-from-a-secret-ref-0123456789abcdef"


def deployment(docs: Sequence[Mapping[str, Any]], app: str) -> Mapping[str, Any]:
    """The Deployment of `app` (``<fullname>-<app>``)."""
    found = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(f"-{app}")
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} Deployments for {app}")
    return found[0]


def container_env(docs: Sequence[Mapping[str, Any]], app: str) -> dict[str, str]:
    """What the app's container sees: its ConfigMaps (``envFrom``) plus its ``env`` entries,
    values from Secrets replaced by a placeholder."""
    (container,) = deployment(docs, app)["spec"]["template"]["spec"]["containers"]
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", SECRET_PLACEHOLDER)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--build"]:
        print(build_helm())
        return 0
    docs = template(args)
    print(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
