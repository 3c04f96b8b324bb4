"""docker-compose.yml is consistent: services, health gates, and every setting a service's
pydantic-settings class needs (checked by building the class from the compose environment)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from service_defaults import tracing

from .tracing_env import check_tracing_env, otel_env

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
CHART_VALUES = ROOT / "deploy" / "helm" / "nexo" / "values.yaml"
JAEGER_CONFIG = ROOT / "deploy" / "helm" / "nexo" / "files" / "jaeger.yaml"
SERVICES = ("evidence", "sales", "orders")
APPS = (*SERVICES, "gateway")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _resolve(value: str, dotenv: Mapping[str, str] | None = None) -> str:
    """Compose-style ``${VAR:-default}`` / ``${VAR:?msg}`` with `dotenv` (default: empty)."""

    def repl(m: re.Match[str]) -> str:
        if dotenv and dotenv.get(m.group("name")):
            return dotenv[m.group("name")]
        if m.group("op") in {":-", "-"}:
            return m.group("arg")
        # required: the user sets it (long enough for the prod JWT secret check)
        return f"compose-test-{m.group('name').lower()}-value-0123456789abcdef"

    return INTERPOLATION.sub(repl, value.replace("$$", "$"))


def _environment(
    service: dict[str, Any], dotenv: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _resolve(str(v), dotenv) for k, v in env.items()}


def _settings_class(app: str) -> type[Any]:
    """The settings class of ``app``: the class in ``<app>.settings`` that subclasses
    ``service_defaults.settings.ServiceSettings`` (the gateway: ``CommonSettings``)."""
    try:
        module = importlib.import_module(f"{app}.settings")
        base_mod = importlib.import_module("service_defaults.settings")
    except ImportError as exc:  # pragma: no cover - only while the package is missing
        pytest.fail(f"{app}.settings (the settings convention of CONTRIBUTING.md) missing: {exc}")
    bases = [
        getattr(base_mod, n) for n in ("ServiceSettings", "CommonSettings") if hasattr(base_mod, n)
    ]
    assert bases, "service_defaults.settings has no ServiceSettings class"
    for base in bases:
        found = [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, base) and obj not in bases and obj.__module__ == module.__name__
        ]
        if found:
            assert len(found) == 1, f"{app}.settings has several settings classes: {found}"
            return found[0]
    pytest.fail(f"{app}.settings has no subclass of service_defaults.settings.ServiceSettings")


def test_every_service_is_present(compose: dict[str, Any]) -> None:
    assert {"kafka", "postgres", *APPS} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.1")
    assert compose["services"]["postgres"]["image"].startswith("postgres:15")


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        check = svc.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name} has an empty healthcheck"
        if name in APPS:
            assert "/health/ready" in " ".join(map(str, check["test"])), name


def test_depends_on_are_health_gated(compose: dict[str, Any]) -> None:
    for name in APPS:
        deps = compose["services"][name].get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on must be a health-gated map"
        assert deps, f"{name}: depends_on is empty"
        for dep, cond in deps.items():
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
            assert cond.get("condition") == "service_healthy", f"{name} -> {dep}"
    for name in SERVICES:
        assert {"kafka", "postgres"} <= set(compose["services"][name]["depends_on"])
    assert set(SERVICES) <= set(compose["services"]["gateway"]["depends_on"])


def test_services_build_from_their_dockerfile(compose: dict[str, Any]) -> None:
    for name in APPS:
        build = compose["services"][name]["build"]
        assert build["dockerfile"] == f"services/{name}/Dockerfile"
        dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
        assert f"--package {name}" in dockerfile
        assert f"{name}.main:app_from_env" in dockerfile
        assert "USER " in dockerfile


def test_postgres_creates_one_database_per_service(compose: dict[str, Any]) -> None:
    init = (ROOT / "deploy" / "postgres" / "init.sql").read_text().lower()
    for name in SERVICES:
        assert f"create database {name};" in init
        url = _environment(compose["services"][name])[f"{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://")
        assert url.endswith(f"@postgres:5432/{name}")


@pytest.mark.parametrize("app", APPS)
def test_environment_satisfies_the_settings_class(compose: dict[str, Any], app: str) -> None:
    cls = _settings_class(app)
    prefix = str(cls.model_config.get("env_prefix") or "")
    assert prefix == f"{app.upper()}_"
    env = _environment(compose["services"][app])

    fields = {name.upper(): info for name, info in cls.model_fields.items()}
    own = {k.removeprefix(prefix): v for k, v in env.items() if k.startswith(prefix)}
    unknown = sorted(set(own) - set(fields))
    assert not unknown, f"{app}: variables no setting reads: {[prefix + u for u in unknown]}"
    missing = sorted(
        prefix + n for n, info in fields.items() if info.is_required() and n not in own
    )
    assert not missing, f"{app}: required settings not set: {missing}"

    # Validators (prod secret, kafka bootstrap when TRANSPORT=kafka, URL schemes) must pass
    # with exactly this environment.
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(prefix):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = cls(_env_file=None)
    assert settings.env == "prod"
    if app in SERVICES:
        assert settings.transport == "kafka"
        assert settings.kafka_bootstrap_servers == "kafka:9092"
    else:
        assert settings.mode == "proxy"
        for name in SERVICES:
            assert settings.service_url(name) == f"http://{name}:8000"


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    example = (ROOT / "deploy" / ".env.example").read_text()
    names: set[str] = set()
    for svc in compose["services"].values():
        for value in (svc.get("environment") or {}).values():
            names |= {m.group("name") for m in INTERPOLATION.finditer(str(value))}
        for port in svc.get("ports") or []:
            names |= {m.group("name") for m in INTERPOLATION.finditer(str(port))}
    undocumented = sorted(n for n in names if n not in example)
    assert not undocumented, f"not in deploy/.env.example: {undocumented}"
    for app in APPS:
        for key in _environment(compose["services"][app]):
            generic = "<SVC>_" + key.split("_", 1)[-1]
            assert key in example or generic in example, f"{key} not documented"


# ------------------------------------------------------------------------------ tracing


def _dotenv(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _jaeger_port(config: dict[str, Any], *path: str) -> int:
    node: Any = config
    for key in path:
        node = node[key]
    return int(str(node["endpoint"]).rsplit(":", 1)[1])


def test_every_app_exports_traces_to_the_compose_jaeger(compose: dict[str, Any]) -> None:
    jaeger = compose["services"]["jaeger"]
    image = yaml.safe_load(CHART_VALUES.read_text())["tracing"]["jaeger"]["image"]
    assert jaeger["image"] == f"{image['repository']}:{image['tag']}"  # the chart's release
    assert jaeger["command"] == ["--config=/etc/jaeger/config.yaml"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in jaeger["volumes"]}
    assert (ROOT / mounts["/etc/jaeger/config.yaml"]).resolve() == JAEGER_CONFIG
    config = yaml.safe_load(JAEGER_CONFIG.read_text())
    otlp = _jaeger_port(config, "receivers", "otlp", "protocols", "http")
    query = _jaeger_port(config, "extensions", "jaeger_query", "http")
    health = _jaeger_port(config, "extensions", "healthcheckv2", "http")
    assert f"127.0.0.1:{health}/status" in " ".join(jaeger["healthcheck"]["test"])
    assert [_resolve(p) for p in jaeger["ports"]] == [f"127.0.0.1:{query}:{query}"]
    for app in APPS:
        env = _environment(compose["services"][app])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{otlp}"
        assert env["OTEL_SERVICE_NAME"] == app
        check_tracing_env(env, app)
    gateway = _environment(compose["services"]["gateway"])
    assert gateway["GATEWAY_TRACES_QUERY_URL"] == f"http://jaeger:{query}"


def test_the_env_file_switches_tracing_off_and_sets_the_ratio(compose: dict[str, Any]) -> None:
    example = _dotenv(ROOT / "deploy" / ".env.example")
    assert example["OTEL_TRACES_EXPORTER"] == "otlp"
    for app in APPS:
        for dotenv, on in (
            (example, True),
            ({}, True),
            ({**example, "OTEL_TRACES_EXPORTER": "none"}, False),
        ):
            env = otel_env(_environment(compose["services"][app], dotenv))
            with pytest.MonkeyPatch.context() as mp:
                for key in list(os.environ):
                    if key.startswith("OTEL_"):
                        mp.delenv(key)
                for key, value in env.items():
                    mp.setenv(key, value)
                mp.setattr(tracing, "extra_span_processors", [])
                assert tracing.tracing_configured() is on, (app, dotenv)
        env = _environment(compose["services"][app], {"OTEL_TRACES_SAMPLER_ARG": "0.25"})
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        check_tracing_env(env, app)


# ------------------------------------------------------------- compose and the Helm chart agree

# Differ by nature between a Docker host and a cluster: addresses, secrets, log level input.
DEPLOYMENT_SPECIFIC = (
    "_DATABASE_URL",
    "_KAFKA_BOOTSTRAP_SERVERS",
    "_EVIDENCE_URL",
    "_SALES_URL",
    "_ORDERS_URL",
    "_JWT_SECRET",
    "PGPASSWORD",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "_TRACES_QUERY_URL",
)


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    from deploy.helm.render import helm_binary, template

    if helm_binary() is None:
        msg = "helm missing: python -m deploy.helm.render --build (.ci/run builds it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    # tracing on, with the in-chart Jaeger: compose always runs one
    return template(
        sets={
            "secrets.jwtSecret": "x" * 48,
            "secrets.postgresPassword": "pw",
            "tracing.enabled": True,
        }
    )


def test_compose_and_chart_run_the_same_apps_on_the_same_port(
    compose: dict[str, Any], chart_docs: list[dict[str, Any]]
) -> None:
    from deploy.helm.render import deployment

    chart_apps = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in chart_docs
        if d["kind"] == "Deployment"
    }
    assert chart_apps == {*APPS, "jaeger"}
    assert {*APPS, "jaeger"} <= set(compose["services"])
    for app in APPS:
        (container,) = deployment(chart_docs, app)["spec"]["template"]["spec"]["containers"]
        assert container["command"] == compose["services"][app]["command"]
        (port,) = container["ports"]
        assert port["containerPort"] == 8000
        check = " ".join(map(str, compose["services"][app]["healthcheck"]["test"]))
        assert f":{port['containerPort']}/health/ready" in check
    published = compose["services"]["gateway"]["ports"]
    assert [_resolve(p).rsplit(":", 1)[1] for p in published] == ["8000"]


@pytest.mark.parametrize("app", APPS)
def test_compose_and_chart_set_the_same_settings(
    compose: dict[str, Any], chart_docs: list[dict[str, Any]], app: str
) -> None:
    from deploy.helm.render import container_env

    in_compose = _environment(compose["services"][app])
    in_chart = container_env(chart_docs, app)
    assert sorted(in_compose) == sorted(in_chart)
    differing = {
        k: (in_compose[k], in_chart[k])
        for k in in_compose
        if not k.endswith(DEPLOYMENT_SPECIFIC) and in_compose[k] != in_chart[k]
    }
    assert not differing, f"{app}: compose vs chart: {differing}"
    if app != "gateway":
        db = f"{app.upper()}_DATABASE_URL"
        assert in_compose[db].rsplit("/", 1)[1] == in_chart[db].rsplit("/", 1)[1] == app


def test_compose_and_chart_run_the_same_jaeger(
    compose: dict[str, Any], chart_docs: list[dict[str, Any]]
) -> None:
    from deploy.helm.render import container_env, deployment

    dep = deployment(chart_docs, "jaeger")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    jaeger = compose["services"]["jaeger"]
    assert container["image"] == jaeger["image"]
    assert container["args"][0] == jaeger["command"][0]  # the same file, mounted at one path
    (configmap,) = [
        d
        for d in chart_docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == dep["metadata"]["name"]
    ]
    assert configmap["data"]["config.yaml"].strip() == JAEGER_CONFIG.read_text().strip()
    assert {e["name"]: e["value"] for e in container["env"]} == jaeger["environment"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for app in APPS:
        in_compose = _environment(compose["services"][app])["OTEL_EXPORTER_OTLP_ENDPOINT"]
        in_chart = container_env(chart_docs, app)["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert in_chart == f"http://{dep['metadata']['name']}:{ports['otlp-http']}"
        assert in_compose.rsplit(":", 1)[1] == str(ports["otlp-http"])
    query = _environment(compose["services"]["gateway"])["GATEWAY_TRACES_QUERY_URL"]
    assert query.rsplit(":", 1)[1] == str(ports["query"])
    assert container_env(chart_docs, "gateway")["GATEWAY_TRACES_QUERY_URL"] == (
        f"http://{dep['metadata']['name']}:{ports['query']}"
    )
