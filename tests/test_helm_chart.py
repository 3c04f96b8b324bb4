"""The Helm chart (deploy/helm/nexo), verified offline: ``helm template`` with the default and the
production values; core objects against the Kubernetes schemas of ``kubernetes-validate``;
Strimzi / KEDA / CloudNativePG objects by the fields Nexo sets; topics equal to the contracts'
table; every env var a real setting (and every required one set); probes, ports and commands
that exist in the apps."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from contracts.topics import all_topics, consumer_groups
from deploy.helm import topics as chart_topics
from deploy.helm.render import CHART, HelmError, container_env, helm_binary, template

from .tracing_env import check_tracing_env, otel_env

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = CHART / "values-production.yaml"
SERVICES = ("evidence", "sales", "orders")
APPS = (*SERVICES, "gateway")
DEFAULT_SETS = {
    "secrets.jwtSecret": "x" * 48,
    "secrets.postgresPassword": "pw-with-@:/-chars",
}
K8S_VERSION = "1.33.0"
CORE_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
HELPER_ENV = {"PGPASSWORD"}
"""Not a Nexo setting: libpq's variable, read by asyncpg when the URL carries no password."""


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    if helm_binary() is None:
        msg = "helm missing: python -m deploy.helm.render --build (.ci/run builds it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return template(sets=DEFAULT_SETS)


@pytest.fixture(scope="module")
def production_docs() -> list[dict[str, Any]]:
    return template([PRODUCTION])


@pytest.fixture(scope="module", params=["default", "production"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return template(sets=DEFAULT_SETS) if request.param == "default" else template([PRODUCTION])


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    found = [d for d in _kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def _group(doc: dict[str, Any]) -> str:
    api = str(doc["apiVersion"])
    return api.split("/", 1)[0] if "/" in api else ""


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def _container_env(docs: list[dict[str, Any]], app: str) -> dict[str, str]:
    return container_env(docs, app)


def _settings_class(app: str) -> type[Any]:
    module = importlib.import_module(f"{app}.settings")
    return getattr(module, f"{app.capitalize()}Settings")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ schemas


def test_both_values_files_render_and_every_core_object_is_schema_valid(
    docs: list[dict[str, Any]],
) -> None:
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    assert {"HorizontalPodAutoscaler", "NetworkPolicy", "Job", "ScaledObject"} <= kinds
    core = [d for d in docs if _group(d) in CORE_GROUPS]
    assert len(core) >= 20
    for doc in core:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message} at {exc.path}")
    assert {_group(d) for d in docs} - CORE_GROUPS <= {
        "keda.sh",
        "kafka.strimzi.io",
        "postgresql.cnpg.io",
    }


def test_schema_validation_does_catch_a_broken_object(default_docs: list[dict[str, Any]]) -> None:
    dep = dict(_one(default_docs, "Deployment", "-sales"))
    broken = {**dep, "spec": {**dep["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_required_secrets_are_enforced() -> None:
    with pytest.raises(HelmError, match=r"secrets\.jwtSecret"):
        template(sets={"secrets.postgresPassword": "pw"})
    with pytest.raises(HelmError, match=r"kafka\.mode"):
        template(sets={**DEFAULT_SETS, "kafka.mode": "bogus"})


# ------------------------------------------------------------------------------ topics


def test_topics_file_matches_the_contracts_table() -> None:
    assert chart_topics.main(["--check"]) == 0, "run: uv run python -m deploy.helm.topics"


def test_strimzi_topics_equal_the_contracts_topic_table(
    production_docs: list[dict[str, Any]],
) -> None:
    rendered = {
        t["spec"]["topicName"]: (t["spec"]["partitions"], t["spec"]["config"]["retention.ms"])
        for t in _kind(production_docs, "KafkaTopic")
    }
    expected = {t.name: (t.partitions, t.retention_ms) for t in all_topics(include_dlq=True)}
    assert rendered == expected
    assert any(name.endswith(".dlq") for name in rendered)
    for topic in _kind(production_docs, "KafkaTopic"):
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "nexo"
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
        assert topic["spec"]["config"]["cleanup.policy"] == "delete"
        assert topic["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_external_kafka_renders_no_kafka_topics(default_docs: list[dict[str, Any]]) -> None:
    assert _kind(default_docs, "KafkaTopic") == []


# ------------------------------------------------------------------------------ KEDA, HPA


def test_keda_scales_each_service_on_the_lag_of_its_consumer_groups(
    docs: list[dict[str, Any]],
) -> None:
    expected: dict[str, set[tuple[str, str]]] = {s: set() for s in SERVICES}
    for group, names in consumer_groups().items():
        service = group.split(".", 1)[0]
        if service in expected:
            expected[service] |= {(group, n) for n in names}
    assert all(expected.values()), expected
    bootstrap = _container_env(docs, "sales")["SALES_KAFKA_BOOTSTRAP_SERVERS"]
    for service in SERVICES:
        so = _one(docs, "ScaledObject", f"-{service}")
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        target = so["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", so["metadata"]["name"])
        assert _one(docs, "Deployment", f"-{service}")["metadata"]["name"] == target["name"]
        # KEDA owns the replica count: the Deployment must not fight it
        assert "replicas" not in _one(docs, "Deployment", f"-{service}")["spec"]
        triggers = so["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        got = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers}
        assert got == expected[service]
        for t in triggers:
            assert t["metadata"]["bootstrapServers"] == bootstrap
            assert int(t["metadata"]["lagThreshold"]) > 0
        partitions = min(t.partitions for t in all_topics() if t.producer == service)
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= partitions


def test_gateway_has_an_hpa_and_no_fixed_replicas(docs: list[dict[str, Any]]) -> None:
    hpa = _one(docs, "HorizontalPodAutoscaler", "-gateway")
    dep = _one(docs, "Deployment", "-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in dep["spec"]


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize("app", APPS)
def test_every_env_var_is_a_real_setting_and_required_ones_are_set(
    docs: list[dict[str, Any]], app: str
) -> None:
    cls = _settings_class(app)
    prefix = str(cls.model_config.get("env_prefix"))
    assert prefix == f"{app.upper()}_"
    env = _container_env(docs, app)
    otel = otel_env(env)
    if otel:  # process-wide OpenTelemetry settings: each one's effect is checked
        check_tracing_env(otel, app)
    env = {k: v for k, v in env.items() if k not in otel}
    fields = {name.upper() for name in cls.model_fields}
    unknown = sorted(k for k in env if k not in HELPER_ENV and k.removeprefix(prefix) not in fields)
    assert not unknown, f"{app}: variables no setting reads: {unknown}"
    assert all(k.startswith(prefix) for k in env if k not in HELPER_ENV)
    missing = [
        prefix + n.upper()
        for n, info in cls.model_fields.items()
        if info.is_required() and prefix + n.upper() not in env
    ]
    assert not missing

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(prefix):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = cls(_env_file=None)
    assert settings.env == "prod"
    assert settings.transport == "kafka"
    assert settings.kafka_bootstrap_servers
    assert settings.port == 8000
    assert settings.host == "0.0.0.0"
    assert settings.shutdown_drain_seconds > 0
    if app == "gateway":
        assert settings.mode == "proxy"
        for service in SERVICES:
            url = settings.service_url(service)
            svc = _one(docs, "Service", f"-{service}")
            assert url == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    else:
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert settings.database_url.endswith(f"/{service_db(app)}")
        assert ":" not in settings.database_url.split("//", 1)[1].split("@", 1)[0], (
            "the password comes from PGPASSWORD, never inside the URL"
        )
        assert "PGPASSWORD" in env


def service_db(app: str) -> str:
    return app  # values.yaml: postgresql.databases.<app> = <app>


def test_secrets_come_from_secret_refs(docs: list[dict[str, Any]]) -> None:
    secrets = {d["metadata"]["name"] for d in _kind(docs, "Secret")}
    for app in APPS:
        dep = _one(docs, "Deployment", f"-{app}")
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert f"{app.upper()}_JWT_SECRET" in refs
        for ref in refs.values():
            # the chart's own Secret, or one the operators/users provide
            assert ref["name"] in secrets or ref["name"] in {"nexo-secrets", "nexo-pg-app"}
    for s in _kind(docs, "Secret"):
        assert s["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(s["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


def test_production_uses_cloudnativepg_and_strimzi(production_docs: list[dict[str, Any]]) -> None:
    env = _container_env(production_docs, "orders")
    assert env["ORDERS_KAFKA_BOOTSTRAP_SERVERS"] == "nexo-kafka-bootstrap.kafka:9092"
    assert env["ORDERS_DATABASE_URL"] == "postgresql+asyncpg://nexo@nexo-pg-rw:5432/orders"
    (cluster,) = _kind(production_docs, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "nexo"
    max_conn = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    databases = {d["spec"]["name"]: d for d in _kind(production_docs, "Database")}
    assert set(databases) == set(SERVICES)
    for db in databases.values():
        assert db["apiVersion"] == "postgresql.cnpg.io/v1"
        assert db["spec"]["owner"] == "nexo"
        assert db["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    # connection budget: max replicas x (pool + the relay's LISTEN/lock connection)
    budget = 0
    for service in SERVICES:
        pool = int(_container_env(production_docs, service)[f"{service.upper()}_DB_POOL_SIZE"])
        replicas = _one(production_docs, "ScaledObject", f"-{service}")["spec"]["maxReplicaCount"]
        budget += replicas * (pool + 1)
    assert budget + 3 + len(SERVICES) <= max_conn, (budget, max_conn)


# ------------------------------------------------------------------------------ migrations


def test_migrations_run_in_a_hook_job_before_the_replicas(docs: list[dict[str, Any]]) -> None:
    jobs = _kind(docs, "Job")
    assert len(jobs) == len(SERVICES)
    for service in SERVICES:
        job = _one(docs, "Job", f"-{service}-migrate")
        hook = job["metadata"]["annotations"]["helm.sh/hook"]
        assert "pre-upgrade" in hook
        assert "install" in hook
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == [
            "python",
            "-m",
            "service_defaults.migrations",
            "upgrade",
            service,
        ]
        assert (ROOT / "services" / service / "migrations" / "versions").is_dir()
        names = {e["name"] for e in container["env"]}
        assert names == {f"{service.upper()}_DATABASE_URL", "PGPASSWORD"}
        url = next(e["value"] for e in container["env"] if e["name"].endswith("DATABASE_URL"))
        assert url == _container_env(docs, service)[f"{service.upper()}_DATABASE_URL"]
    importlib.import_module("service_defaults.migrations")


def test_migration_hook_is_pre_install_unless_the_release_creates_the_database(
    default_docs: list[dict[str, Any]], production_docs: list[dict[str, Any]]
) -> None:
    pre = _one(default_docs, "Job", "-sales-migrate")["metadata"]["annotations"]["helm.sh/hook"]
    post = _one(production_docs, "Job", "-sales-migrate")["metadata"]["annotations"]
    assert pre == "pre-install,pre-upgrade"
    assert post["helm.sh/hook"] == "post-install,pre-upgrade"


# ------------------------------------------------------------------------------ pods


def test_pods_are_non_root_and_read_only(docs: list[dict[str, Any]]) -> None:
    specs = list(_pod_specs(docs))
    assert len(specs) == len(APPS) + len(SERVICES)
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        mounts = set()
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"], name
            assert c["resources"]["limits"]["memory"], name
            mounts |= {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/tmp", "/app/var"} <= mounts, name


@pytest.mark.parametrize("app", APPS)
async def test_probes_ports_and_command_exist_in_the_app(
    default_docs: list[dict[str, Any]], app: str
) -> None:
    dep = _one(default_docs, "Deployment", f"-{app}")
    spec = dep["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", app]
    assert importlib.util.find_spec(f"{app}.__main__") is not None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = _container_env(default_docs, app)
    assert ports == {"http": int(env[f"{app.upper()}_PORT"])}
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/health/live"
    assert {p["port"] for p in probes.values()} == {"http"}
    drain = float(env[f"{app.upper()}_SHUTDOWN_DRAIN_SECONDS"])
    # drain + in-flight requests (10 s) + messaging stop must fit in the grace period
    assert spec["terminationGracePeriodSeconds"] >= drain + 10 + 15

    # the probe paths answer in the real app (ready is 503 before the lifespan ran: not 404)
    cls = _settings_class(app)
    main = importlib.import_module(f"{app}.main")
    settings = (
        cls(mode="proxy", transport="kafka", kafka_bootstrap_servers="k:9092")
        if app == "gateway"
        else cls()
    )
    asgi = main.create_app(settings)
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(probes["livenessProbe"]["path"])).status_code == 200
        assert (await client.get(probes["readinessProbe"]["path"])).status_code == 503
        assert (await client.get("/health/nope")).status_code == 404


def test_services_select_their_deployments(docs: list[dict[str, Any]]) -> None:
    for app in APPS:
        svc = _one(docs, "Service", f"-{app}")
        dep = _one(docs, "Deployment", f"-{app}")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        pdb = _one(docs, "PodDisruptionBudget", f"-{app}")
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["maxUnavailable"] == 1
    for other in APPS:
        if other != "gateway":
            assert _one(docs, "Service", f"-{other}")["spec"]["type"] == "ClusterIP"


def test_only_the_gateway_is_reachable_from_outside(default_docs: list[dict[str, Any]]) -> None:
    policies = _kind(default_docs, "NetworkPolicy")
    deny = next(p for p in policies if p["metadata"]["name"].endswith("-default-deny"))
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"]
    assert deny["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "nexo"
    gw_labels = _one(default_docs, "Deployment", "-gateway")["spec"]["template"]["metadata"][
        "labels"
    ]
    for p in policies:
        if p is deny:
            continue
        selected = p["spec"]["podSelector"]["matchLabels"]
        rules = p["spec"]["ingress"]
        if selected.items() <= gw_labels.items():
            assert rules == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
            continue
        for rule in rules:
            for peer in rule["from"]:
                # a service admits the gateway's pods only
                assert peer["podSelector"]["matchLabels"].items() <= gw_labels.items()
    every_pod = [s for _, s in _pod_specs(default_docs)]
    assert every_pod
    for d in _kind(default_docs, "Deployment") + _kind(default_docs, "Job"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert deny["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize(
    "sets",
    [
        {"keda.enabled": False, "gateway.autoscaling.enabled": False},
        {"networkPolicy.enabled": False, "podDisruptionBudget.enabled": False},
        {"migrations.enabled": False, "serviceAccount.create": False},
        {"jwt.algorithm": "RS256", "jwt.publicKey": "-----BEGIN PUBLIC KEY-----\nMIIB\n"},
        {"kafka.mode": "strimzi", "postgresql.mode": "cloudnativepg"},
    ],
    ids=["no-autoscaling", "no-policies", "no-migrations", "rs256", "operators"],
)
def test_switches_render_valid_objects(sets: dict[str, str | bool]) -> None:
    docs = template(sets={**DEFAULT_SETS, **sets})
    for doc in docs:
        if _group(doc) in CORE_GROUPS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = {d["kind"] for d in docs}
    if sets.get("keda.enabled") is False:
        assert "ScaledObject" not in kinds
        assert "HorizontalPodAutoscaler" not in kinds
        for app in APPS:
            assert _one(docs, "Deployment", f"-{app}")["spec"]["replicas"] >= 1
    if sets.get("networkPolicy.enabled") is False:
        assert "NetworkPolicy" not in kinds
        assert "PodDisruptionBudget" not in kinds
    if sets.get("migrations.enabled") is False:
        assert "Job" not in kinds
        assert "ServiceAccount" not in kinds
    if "jwt.algorithm" in sets:
        for app in APPS:
            env = _container_env(docs, app)
            assert f"{app.upper()}_JWT_SECRET" not in env
            assert env[f"{app.upper()}_JWT_PUBLIC_KEY"].startswith("-----BEGIN PUBLIC KEY-----")
    if sets.get("kafka.mode") == "strimzi":
        assert len(_kind(docs, "KafkaTopic")) == len(all_topics())
        assert _container_env(docs, "gateway")["GATEWAY_KAFKA_BOOTSTRAP_SERVERS"] == (
            "nexo-kafka-bootstrap.nexo:9092"
        )
        # the operator's Secret, not the chart's, holds the database password
        (container,) = _one(docs, "Deployment", "-sales")["spec"]["template"]["spec"]["containers"]
        ref = next(e for e in container["env"] if e["name"] == "PGPASSWORD")
        assert ref["valueFrom"]["secretKeyRef"] == {"name": "nexo-pg-app", "key": "password"}
        assert "Cluster" not in kinds  # createCluster is off: the cluster exists already


# ------------------------------------------------------------------------------ tracing

TRACING_SETS: dict[str, str | bool | int] = {**DEFAULT_SETS, "tracing.enabled": True}


@pytest.fixture(scope="module")
def tracing_docs() -> list[dict[str, Any]]:
    return template(sets=TRACING_SETS)


def _jaeger_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["metadata"]["name"].endswith("-jaeger")
        or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "jaeger"
    ]


def test_tracing_off_sets_no_otel_variable_and_renders_no_backend(
    default_docs: list[dict[str, Any]],
) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["tracing"]["enabled"] is False
    assert values["tracing"]["jaeger"]["enabled"] is True  # would run if tracing were on
    # an endpoint alone does not switch it on either
    with_endpoint = template(sets={**DEFAULT_SETS, "tracing.endpoint": "http://c:4318"})
    for docs in (default_docs, with_endpoint):
        assert _jaeger_objects(docs) == []
        for app in APPS:
            env = _container_env(docs, app)
            assert otel_env(env) == {}, app
            assert "GATEWAY_TRACES_QUERY_URL" not in env
            (container,) = _one(docs, "Deployment", f"-{app}")["spec"]["template"]["spec"][
                "containers"
            ]
            assert not [e for e in container.get("env", []) if e["name"].startswith("OTEL_")]


def test_tracing_on_renders_a_schema_valid_jaeger(tracing_docs: list[dict[str, Any]]) -> None:
    jaeger = _jaeger_objects(tracing_docs)
    assert sorted(d["kind"] for d in jaeger) == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "Service",
    ]
    for doc in tracing_docs:
        if _group(doc) in CORE_GROUPS:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}")
    config = _one(tracing_docs, "ConfigMap", "-jaeger")["data"]["config.yaml"]
    assert config.strip() == (CHART / "files" / "jaeger.yaml").read_text().strip()


def test_jaeger_pod_is_non_root_read_only_and_probed(tracing_docs: list[dict[str, Any]]) -> None:
    dep = _one(tracing_docs, "Deployment", "-jaeger")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"  # one in-memory store at a time
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    repo, tag = c["image"].rsplit(":", 1)
    assert repo == "jaegertracing/jaeger"
    assert re.fullmatch(r"2\.\d+\.\d+", tag), "pin a Jaeger v2 release"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/jaeger"]["readOnly"] is True
    assert "/tmp" in mounts
    assert c["args"][0] == "--config=/etc/jaeger/config.yaml"
    assert "--set=extensions.jaeger_storage.backends.memstore.memory.max_traces=10000" in c["args"]
    # it must not trace itself (the Go SDK's default target is localhost:4317)
    assert {e["name"]: e["value"] for e in c["env"]} == {
        "OTEL_SDK_DISABLED": "true",
        "OTEL_TRACES_EXPORTER": "none",
    }
    # the ports are the config's (files/jaeger.yaml) and the probes hit the health extension
    config = yaml.safe_load((CHART / "files" / "jaeger.yaml").read_text())
    listen = {
        "otlp-http": config["receivers"]["otlp"]["protocols"]["http"]["endpoint"],
        "query": config["extensions"]["jaeger_query"]["http"]["endpoint"],
        "health": config["extensions"]["healthcheckv2"]["http"]["endpoint"],
    }
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert {k: str(v) for k, v in ports.items()} == {
        k: v.rsplit(":", 1)[1] for k, v in listen.items()
    }
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/status", "port": "health"}
    svc = _one(tracing_docs, "Service", "-jaeger")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {
        "otlp-http": "otlp-http",
        "query": "query",
    }


def test_jaeger_admits_otlp_from_the_apps_and_queries_from_the_gateway(
    tracing_docs: list[dict[str, Any]],
) -> None:
    policy = _one(tracing_docs, "NetworkPolicy", "-jaeger")
    jaeger = _one(tracing_docs, "Deployment", "-jaeger")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= jaeger.items()
    rules = {r["ports"][0]["port"]: r["from"] for r in policy["spec"]["ingress"]}
    assert set(rules) == {"otlp-http", "query"}

    def admitted(peers: list[dict[str, Any]], labels: dict[str, str]) -> bool:
        for peer in peers:
            sel = peer["podSelector"]
            if not sel.get("matchLabels", {}).items() <= labels.items():
                continue
            if all(labels.get(e["key"]) in e["values"] for e in sel.get("matchExpressions", [])):
                return True
        return False

    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in _kind(tracing_docs, "Deployment") + _kind(tracing_docs, "Job")
    }
    for name, labels in pods.items():
        app = labels["app.kubernetes.io/component"]
        assert admitted(rules["otlp-http"], labels) is (app in APPS), name
        assert admitted(rules["query"], labels) is (app == "gateway"), name
    # the default-deny policy covers Jaeger too: nothing else reaches it
    deny = _one(tracing_docs, "NetworkPolicy", "-default-deny")
    assert deny["spec"]["podSelector"]["matchLabels"].items() <= jaeger.items()
    # queryFrom adds who may open the UI; without policies none is rendered
    extra = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    label = "kubernetes\\.io/metadata\\.name"  # dots escaped for --set
    docs = template(
        sets={
            **TRACING_SETS,
            f"tracing.jaeger.queryFrom[0].namespaceSelector.matchLabels.{label}": "ops",
        }
    )
    rules = {
        r["ports"][0]["port"]: r["from"]
        for r in _one(docs, "NetworkPolicy", "-jaeger")["spec"]["ingress"]
    }
    assert extra in rules["query"]
    assert extra not in rules["otlp-http"]
    unpoliced = template(sets={**TRACING_SETS, "networkPolicy.enabled": False})
    assert "NetworkPolicy" not in {d["kind"] for d in unpoliced}
    assert len(_jaeger_objects(unpoliced)) == 3


@pytest.mark.parametrize("app", APPS)
def test_tracing_on_points_every_app_at_the_in_chart_jaeger(
    tracing_docs: list[dict[str, Any]], app: str
) -> None:
    env = _container_env(tracing_docs, app)
    svc = _one(tracing_docs, "Service", "-jaeger")
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    name = svc["metadata"]["name"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{name}:{ports['otlp-http']}"
    assert env["OTEL_SERVICE_NAME"] == app
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "1"
    check_tracing_env(env, app)
    if app == "gateway":
        assert env["GATEWAY_TRACES_QUERY_URL"] == f"http://{name}:{ports['query']}"
    # the OTEL_* come from the app's ConfigMap, which the pod's checksum covers
    (container,) = _one(tracing_docs, "Deployment", f"-{app}")["spec"]["template"]["spec"][
        "containers"
    ]
    assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [f"nexo-{app}"]


def test_production_sends_sampled_traces_to_an_external_collector(
    production_docs: list[dict[str, Any]],
) -> None:
    values = yaml.safe_load(PRODUCTION.read_text())["tracing"]
    assert _jaeger_objects(production_docs) == []
    for app in APPS:
        env = _container_env(production_docs, app)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == values["endpoint"]
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == values["sampleRatio"] < 1
        check_tracing_env(env, app)
    gateway = _container_env(production_docs, "gateway")
    assert gateway["GATEWAY_TRACES_QUERY_URL"] == values["queryUrl"]


def test_tracing_values_are_checked() -> None:
    with pytest.raises(HelmError, match=r"tracing\.endpoint"):
        template(sets={**TRACING_SETS, "tracing.jaeger.enabled": False})
    for bad in ("1.5", "-0.1", "ten"):
        with pytest.raises(HelmError, match=r"tracing\.sampleRatio"):
            template(sets={**TRACING_SETS, "tracing.sampleRatio": bad})
    external = template(
        sets={**TRACING_SETS, "tracing.jaeger.enabled": False, "tracing.endpoint": "http://c:4318"}
    )
    assert _jaeger_objects(external) == []
    env = _container_env(external, "gateway")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://c:4318"
    assert "GATEWAY_TRACES_QUERY_URL" not in env  # no Jaeger known: the board's own events
