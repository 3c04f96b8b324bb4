"""Prometheus scrape config, Grafana provisioning and their compose wiring are consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import nexo_messaging.metrics  # noqa: F401  (registers the messaging metrics)
import service_defaults.metrics  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


def test_prometheus_scrapes_every_process() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        if job["job_name"] == "nexo"
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    assert targets == {f"{app}:8000" for app in ("gateway", "evidence", "sales", "orders")}


def test_dashboard_queries_known_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/nexo-ops.json").read_text())
    known = set()
    for metric in REGISTRY.collect():
        known.add(metric.name)
        known |= {s.name for s in metric.samples}
    known |= {f"{n}{suffix}" for n in list(known) for suffix in ("_total", "_bucket")}
    known.add("up")
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(nexo_[a-z_]+|up)\b", target["expr"]))
    assert used, "no queries"
    assert used <= known, sorted(used - known)
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for figure in ("up", "lag", "outbox", "dead letters", "events"):
        assert figure in titles


def test_compose_wires_prometheus_and_grafana() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
