"""docker-compose.yml is consistent: services, health gates, and every setting a service's
pydantic-settings class needs (checked by building the class from the compose environment)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("evidence", "sales", "orders")
APPS = (*SERVICES, "gateway")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _resolve(value: str) -> str:
    """Compose-style ``${VAR:-default}`` / ``${VAR:?msg}`` with an empty .env."""

    def repl(m: re.Match[str]) -> str:
        if m.group("op") in {":-", "-"}:
            return m.group("arg")
        # required: the user sets it (long enough for the prod JWT secret check)
        return f"compose-test-{m.group('name').lower()}-value-0123456789abcdef"

    return INTERPOLATION.sub(repl, value.replace("$$", "$"))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _resolve(str(v)) for k, v in env.items()}


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
)


@pytest.fixture(scope="module")
def chart_docs() -> list[dict[str, Any]]:
    from deploy.helm.render import helm_binary, template

    if helm_binary() is None:
        msg = "helm missing: python -m deploy.helm.render --build (.ci/run builds it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return template(sets={"secrets.jwtSecret": "x" * 48, "secrets.postgresPassword": "pw"})


def test_compose_and_chart_run_the_same_apps_on_the_same_port(
    compose: dict[str, Any], chart_docs: list[dict[str, Any]]
) -> None:
    from deploy.helm.render import deployment

    chart_apps = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in chart_docs
        if d["kind"] == "Deployment"
    }
    assert chart_apps == set(APPS)
    assert set(APPS) <= set(compose["services"])
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
