"""The alert rules are unit-tested with ``promtool test rules`` (promtool built from the Go
module proxy, cached: ``python -m deploy.local.gotools promtool``), and the Grafana dashboard
and the alert rules use only metrics the services export."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import nexo_messaging.metrics
import service_defaults.metrics
from deploy.local import gotools

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
NEXO_METRIC = re.compile(r"\bnexo_[a-z0-9_]+\b")
STANDARD = {"up"}  # set by Prometheus itself for every target


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
