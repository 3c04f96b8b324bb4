"""The alert rules are unit-tested with ``promtool test rules`` (promtool built from the Go
module proxy, cached: ``python -m deploy.local.gotools promtool``), and the Grafana dashboard
and the alert rules use only metrics the services export. The Jaeger configuration that
docker-compose.yml and the Helm chart run (``deploy/helm/nexo/files/jaeger.yaml``) is validated
and started with the locally built Jaeger of the same release; a span exported the way the
services export it comes out of its query API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import nexo_messaging.metrics
import service_defaults.metrics
from deploy.local import gotools
from deploy.local._util import free_ports

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
NEXO_METRIC = re.compile(r"\bnexo_[a-z0-9_]+\b")
STANDARD = {"up"}  # set by Prometheus itself for every target
JAEGER_CONFIG = ROOT / "deploy" / "helm" / "nexo" / "files" / "jaeger.yaml"
JAEGER_RELEASE = {"v1.75.0": "2.12.0"}
"""Go module version (deploy/local builds it) -> release tag of the jaegertracing/jaeger image
(compose and the chart): one Jaeger everywhere."""


def exported_metric_names() -> set[str]:
    """Every series name the services' registries can expose (counters' ``_total``,
    histograms' ``_bucket``/``_sum``/``_count`` ...)."""
    assert nexo_messaging.metrics.PUBLISHED is not None  # the modules register on import
    assert service_defaults.metrics.HTTP_REQUESTS is not None
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
    return names


def _dashboard_exprs() -> list[str]:
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(DASHBOARDS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return exprs


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    assert "nexo_http_request_duration_seconds_bucket" in exported
    dashboard, alerts = _dashboard_exprs(), _alert_exprs()
    assert len(dashboard) >= 5
    assert len(alerts) == 6
    for expr in dashboard + alerts:
        used = set(NEXO_METRIC.findall(expr))
        assert used or "up{" in expr, expr
        unknown = used - exported - STANDARD
        assert not unknown, f"{expr!r} uses metrics no service exports: {sorted(unknown)}"


def test_the_check_catches_an_unknown_metric() -> None:
    assert set(NEXO_METRIC.findall("rate(nexo_messaging_publishd_total[1m])")) - (
        exported_metric_names()
    ) == {"nexo_messaging_publishd_total"}


def test_prometheus_loads_the_alert_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    names = {
        r["alert"]
        for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert names == {
        "NexoConsumerLagGrowing",
        "NexoOutboxStale",
        "NexoDeadLettersGrowing",
        "NexoHigh5xxRatio",
        "NexoServiceDown",
        "NexoRelayWithoutLeader",
    }


def test_promtool_alert_rule_unit_tests() -> None:
    promtool = gotools.tool_path("promtool")
    if not promtool.exists():
        message = f"{promtool} missing: python -m deploy.local.gotools promtool"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    check = subprocess.run(
        [str(promtool), "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [str(promtool), "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# ------------------------------------------------------------------------------ Jaeger


def _tool(name: str) -> Path:
    path = gotools.tool_path(name)
    if not path.exists():
        message = f"{path} missing: python -m deploy.local.gotools {name}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_compose_and_the_chart_run_the_jaeger_release_built_locally() -> None:
    expected = JAEGER_RELEASE.get(gotools.JAEGER_VERSION)
    assert expected, f"map Jaeger {gotools.JAEGER_VERSION} to its v2 image tag (JAEGER_RELEASE)"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["jaeger"]["image"] == f"jaegertracing/jaeger:{expected}"
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "nexo" / "values.yaml").read_text())
    assert values["tracing"]["jaeger"]["image"]["tag"] == expected


def _jaeger_env() -> dict[str, str]:
    # as in compose and the chart: Jaeger must not trace itself to localhost:4317
    return {**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "none"}


def _validate(jaeger: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(jaeger), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_jaeger_env(),
    )


def test_jaeger_validates_the_config(tmp_path: Path) -> None:
    jaeger = _tool("jaeger")
    ok = _validate(jaeger, JAEGER_CONFIG)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "jaeger.yaml"  # the check can fail: an unknown key is refused
    broken.write_text(JAEGER_CONFIG.read_text().replace("max_traces:", "max_tracez:"))
    refused = _validate(jaeger, broken)
    assert refused.returncode != 0
    assert "max_tracez" in refused.stdout + refused.stderr


@pytest.fixture
def jaeger_ports(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Jaeger started from the shared config as the chart starts it (``--config``, ``--set``
    max_traces), its endpoints moved to free loopback ports."""
    jaeger = _tool("jaeger")
    otlp, query, query_grpc, health = free_ports(4)
    args = [
        str(jaeger),
        f"--config={JAEGER_CONFIG}",
        "--set=extensions.jaeger_storage.backends.memstore.memory.max_traces=100",
        f"--set=receivers.otlp.protocols.http.endpoint=127.0.0.1:{otlp}",
        f"--set=extensions.jaeger_query.http.endpoint=127.0.0.1:{query}",
        f"--set=extensions.jaeger_query.grpc.endpoint=127.0.0.1:{query_grpc}",
        f"--set=extensions.healthcheckv2.http.endpoint=127.0.0.1:{health}",
    ]
    with (tmp_path / "jaeger.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_jaeger_env())
        try:
            yield {"otlp": otlp, "query": query, "health": health}
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status), r.read()
    except OSError:
        return 0, b""


def _poll(probe: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def test_the_config_serves_the_probe_otlp_and_the_query_api(
    jaeger_ports: dict[str, int],
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    ports = jaeger_ports
    # the chart's probes and the compose healthcheck: GET /status on the health port
    health = f"http://127.0.0.1:{ports['health']}/status"
    _poll(lambda: _get(health)[0] == 200, health)
    # a span exported as the services export it: OTLP over HTTP to <endpoint>/v1/traces
    provider = TracerProvider(resource=Resource.create({"service.name": "config-check"}))
    endpoint = f"http://127.0.0.1:{ports['otlp']}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    with provider.get_tracer("test").start_as_current_span("checked") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()

    def found() -> bool:  # what the /ops trace view reads
        status, body = _get(f"http://127.0.0.1:{ports['query']}/api/traces/{trace_id}")
        if status != 200:
            return False
        spans = json.loads(body)["data"][0]["spans"]
        return [s["operationName"] for s in spans] == ["checked"]

    _poll(found, f"trace {trace_id} in the query API")
