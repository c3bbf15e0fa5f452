"""The Helm chart (helm/pacsflow), rendered by the real Helm engine and checked offline.

``helm-python-sdk`` binds Helm's Go SDK (no helm binary, no cluster): the chart is linted and
rendered with several realistic value sets, every manifest is validated against the schemas of
the Kubernetes version pinned below (``kubernetes-validate``), and the objects are checked for
what docs/kubernetes.md promises: per role a Deployment, Service (not the worker),
ServiceAccount, autoscaler and PodDisruptionBudget; probes on /health and /ready; non-root
read-only containers with resources and topology spread; /dicom-web to the gateway. The
gateway's nginx configuration is compared with deploy/nginx.conf and run in a real nginx.
"""

from __future__ import annotations

import copy
import http.client
import inspect
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from pacsflow.config import Settings
from pacsflow.container import CHECK_TIMEOUT
from pacsflow.pipeline.records import INGEST_TOPIC
from pacsflow.telemetry import metrics
from streams.faust_app import create_faust_app
from tests.support.nginx import NGINX, ROUTES, Stub, nginx_serving
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pacsflow"
KUBERNETES = "1.33.0"  # the Kubernetes version the manifests are validated against
RELEASE, NAMESPACE = "pacs", "imaging"
FULLNAME = "pacs-pacsflow"
HTTP_ROLES = ("stow", "qido", "wado", "ups", "commitment")
ROLES = (*HTTP_ROLES, "worker", "gateway")
# Kinds of custom resources, which kubernetes-validate has no schema for: checked below.
CUSTOM = {"ScaledObject", "TriggerAuthentication", "HTTPRoute", "ServiceMonitor", "PodMonitor"}

Manifest = dict[str, Any]


def values_file(name: str) -> dict[str, Any]:
    """``helm/pacsflow/ci/<name>-values.yaml``."""
    loaded: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    return loaded


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of value layers (later wins), as ``helm -f a.yaml -f b.yaml`` does."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


# The example value files shipped with the chart (helm/pacsflow/ci/, chart-testing's place).
MINIMAL = values_file("minimal")
PRODUCTION = values_file("production")
# Credentials given inline: the chart keeps them in its own Secret.
INLINE_CREDENTIALS = {
    "kafka": {"sasl": {"enabled": True, "mechanism": "PLAIN", "username": "u", "password": "p"}},
    "objectStore": {"accessKey": "AKIA0000", "secretKey": "s3cr3t"},
    "index": {"url": "https://es:9200", "auth": {"username": "pacsflow", "password": "pw"}},
}
KEDA = merged(PRODUCTION, values_file("keda"))
AUTOSCALING_OFF = {role: {"autoscaling": {"enabled": False}} for role in ROLES}
# Authentication is on by default and needs its issuer and audience: the least to install.
AUTH = {"auth": {"issuer": "https://idp.example.org/realms/pacs", "audience": ["pacsflow"]}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": AUTH,
    "minimal": MINIMAL,
    "production": PRODUCTION,
    "inline-credentials": merged(AUTH, INLINE_CREDENTIALS),
    "autoscaling-off": merged(AUTH, AUTOSCALING_OFF),
    "keda": KEDA,
    "keda-plaintext": merged(AUTH, {"keda": {"enabled": True}}),
}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any]) -> list[Manifest]:
    """Every object the chart renders with ``values``."""
    files = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        document
        for name, text in sorted(files.items())
        if name.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def kinds(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container_of(deployment: Manifest) -> Manifest:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, chart: helm.Chart) -> tuple[str, list[Manifest]]:
    return request.param, render(chart, VALUE_SETS[request.param])


# --- lint and validation -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_helm_lint_passes(name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, kube_version=f"v{KUBERNETES}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_every_manifest_is_valid_for_the_pinned_kubernetes(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendered
    for manifest in objects:
        if manifest["kind"] in CUSTOM:
            continue
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        assert manifest["metadata"].get("namespace") in (None, NAMESPACE)


def test_custom_resources_have_their_required_fields(rendered: tuple[str, list[Manifest]]) -> None:
    """ScaledObject (keda.sh/v1alpha1), TriggerAuthentication and HTTPRoute (v1)."""
    _, objects = rendered
    for scaled in kinds(objects, "ScaledObject").values():
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] in kinds(objects, "Deployment")
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            assert all(isinstance(value, str) for value in trigger["metadata"].values())
            if "authenticationRef" in trigger:
                assert trigger["authenticationRef"]["name"] in kinds(
                    objects, "TriggerAuthentication"
                )
    for auth in kinds(objects, "TriggerAuthentication").values():
        assert auth["apiVersion"] == "keda.sh/v1alpha1"
        for ref in auth["spec"]["secretTargetRef"]:
            assert set(ref) == {"parameter", "name", "key"}
    for route in kinds(objects, "HTTPRoute").values():
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert route["spec"]["parentRefs"]
    for monitor in [
        *kinds(objects, "ServiceMonitor").values(),
        *kinds(objects, "PodMonitor").values(),
    ]:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"


def test_metrics_are_scraped_and_charted_when_asked(chart: helm.Chart) -> None:
    """ServiceMonitor (HTTP roles, port http) and PodMonitor (workers, port health) on
    /metrics; the Grafana dashboard asks only for metrics pacsflow exports."""
    assert not kinds(render(chart, AUTH), "ServiceMonitor")
    objects = render(chart, PRODUCTION)
    services = kinds(objects, "Service")
    (monitor,) = kinds(objects, "ServiceMonitor").values()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    [[expression]] = [monitor["spec"]["selector"]["matchExpressions"]]
    components = {s["spec"]["selector"]["app.kubernetes.io/component"] for s in services.values()}
    assert set(expression["values"]) == components - {"gateway"} == set(HTTP_ROLES)
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    (pods,) = kinds(objects, "PodMonitor").values()
    worker = find(objects, "Deployment", f"{RELEASE}-pacsflow-worker")
    ports = {p["name"] for p in container_of(worker)["ports"]}
    [endpoint] = pods["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    selector = pods["spec"]["selector"]["matchLabels"]
    assert selector.items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    board = find(objects, "ConfigMap", f"{RELEASE}-pacsflow-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(board["data"]["pacsflow.json"])
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for e in expressions
            for n in re.findall(r"pacsflow_[a-z_]+", e)}  # fmt: skip
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in metrics.REGISTRY.collect()
        if family.name.startswith("pacsflow_")
    }
    assert used and used <= exported, used - exported


# --- the properties of every role ----------------------------------------------------------


def test_each_role_has_its_objects(rendered: tuple[str, list[Manifest]]) -> None:
    name, objects = rendered
    values = VALUE_SETS[name]
    keda = values.get("keda", {}).get("enabled", False)
    for role in ROLES:
        full = f"{FULLNAME}-{role}"
        deployment = find(objects, "Deployment", full)
        pod = deployment["spec"]["template"]["spec"]
        account = find(objects, "ServiceAccount", full)
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert selector["app.kubernetes.io/component"] == role
        if role == "worker":
            assert full not in kinds(objects, "Service")
        else:
            service = find(objects, "Service", full)
            assert service["spec"]["selector"] == selector
            (port,) = service["spec"]["ports"]
            assert port["targetPort"] == "http"
            assert "http" in [p["name"] for p in container_of(deployment)["ports"]]
        pdb = find(objects, "PodDisruptionBudget", full)
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert pdb["spec"]["maxUnavailable"] == 1
        autoscaled = values.get(role, {}).get("autoscaling", {}).get("enabled", True)
        if role == "worker" and keda:
            assert full not in kinds(objects, "HorizontalPodAutoscaler")
            assert find(objects, "ScaledObject", full)["spec"]["scaleTargetRef"]["name"] == full
            assert "replicas" not in deployment["spec"]
        elif autoscaled:
            hpa = find(objects, "HorizontalPodAutoscaler", full)
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": full,
            }
            (metric,) = hpa["spec"]["metrics"]
            assert metric["resource"]["name"] == "cpu"
            assert "replicas" not in deployment["spec"]  # the HPA owns the count
        else:
            assert full not in kinds(objects, "HorizontalPodAutoscaler")
            assert deployment["spec"]["replicas"] >= 1


def test_probes_ask_the_health_endpoints(rendered: tuple[str, list[Manifest]]) -> None:
    _, objects = rendered
    for role in ROLES:
        container = container_of(find(objects, "Deployment", f"{FULLNAME}-{role}"))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probes = {
            kind: (container[f"{kind}Probe"]["httpGet"]["path"], container[f"{kind}Probe"])
            for kind in ("startup", "liveness", "readiness")
        }
        if role == "gateway":
            assert {kind: path for kind, (path, _) in probes.items()} == dict.fromkeys(
                probes, "/health"
            )
            continue
        port = "health" if role == "worker" else "http"
        assert ports[port] == (8081 if role == "worker" else 8080)
        assert {kind: path for kind, (path, _) in probes.items()} == {
            "startup": "/health",
            "liveness": "/health",
            "readiness": "/ready",
        }
        for _, probe in probes.values():
            assert probe["httpGet"]["port"] == port
        # The readiness probe outlasts the backends' check, which answers 503 within its bound.
        assert probes["readiness"][1]["timeoutSeconds"] > CHECK_TIMEOUT
        if role == "worker":
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["PACSFLOW_WORKER_HEALTH_PORT"] == "8081"
        else:
            assert container["args"] == [role]


def test_containers_are_non_root_read_only_and_bounded(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendered
    for role in ROLES:
        deployment = find(objects, "Deployment", f"{FULLNAME}-{role}")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        container = container_of(deployment)
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}
        # Writable places on a read-only root: emptyDir volumes.
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        if role != "gateway":
            assert "emptyDir" in volumes[mounts["/var/lib/pacsflow"]]


def test_pods_spread_over_zones_and_nodes(rendered: tuple[str, list[Manifest]]) -> None:
    _, objects = rendered
    for role in ROLES:
        deployment = find(objects, "Deployment", f"{FULLNAME}-{role}")
        pod = deployment["spec"]["template"]["spec"]
        constraints = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
        assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in constraints.values():
            assert constraint["maxSkew"] == 1
            assert (
                constraint["labelSelector"]["matchLabels"]
                == (deployment["spec"]["selector"]["matchLabels"])
            )


def test_the_configuration_is_one_pacsflow_accepts(rendered: tuple[str, list[Manifest]]) -> None:
    """The ConfigMap's PACSFLOW_* values pass pacsflow's own validation (pydantic-settings)."""
    _, objects = rendered
    data = find(objects, "ConfigMap", f"{FULLNAME}-config")["data"]
    settings = Settings(**{key.removeprefix("PACSFLOW_").lower(): v for key, v in data.items()})
    assert settings.host == "0.0.0.0" and settings.port == 8080
    assert settings.resolved_bus_url().startswith("kafka://")
    assert re.match(r"^s3(\+https)?://", settings.resolved_object_store_url())
    assert settings.data_dir == Path("/var/lib/pacsflow")


def test_every_secret_reference_is_rendered_or_external(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, objects = rendered
    chart_secrets = {n: set(s["data"]) for n, s in kinds(objects, "Secret").items()}
    external = {"kafka-user", "s3-credentials", "es-credentials", "minio-credentials"}
    for role in ROLES[:-1]:
        container = container_of(find(objects, "Deployment", f"{FULLNAME}-{role}"))
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            if ref["name"] in chart_secrets:
                assert ref["key"] in chart_secrets[ref["name"]], (name, variable)
            else:
                assert ref["name"] in external, (name, variable)


# --- value sets: what each turns on --------------------------------------------------------


def test_production_uses_tls_and_existing_secrets(chart: helm.Chart) -> None:
    objects = render(chart, PRODUCTION)
    assert "Secret" not in {o["kind"] for o in objects}  # every credential is the user's
    data = find(objects, "ConfigMap", f"{FULLNAME}-config")["data"]
    assert data["PACSFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["PACSFLOW_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["PACSFLOW_KAFKA_CA_CERTS"] == "/etc/pacsflow/tls/kafka/ca.crt"
    assert data["PACSFLOW_KAFKA_CERT_FILE"] == "/etc/pacsflow/tls/kafka-client/tls.crt"
    assert data["PACSFLOW_OBJECT_STORE_URL"] == (
        "s3+https://s3.storage.example.org/pacs-north/archive?region=eu-north-1"
    )
    assert data["PACSFLOW_S3_CA_CERTS"] == "/etc/pacsflow/tls/s3/ca.crt"
    assert data["PACSFLOW_INDEX_URL"] == "https://search.example.org:9200"
    assert data["PACSFLOW_INDEX_CA_CERTS"] == "/etc/pacsflow/tls/index/ca.crt"
    assert data["PACSFLOW_PUBLIC_URL"] == "https://pacs.example.org/dicom-web"
    assert data["PACSFLOW_QIDO_MAX_RESULTS"] == "500"  # extraEnv wins
    worker = find(objects, "Deployment", f"{FULLNAME}-worker")
    container = container_of(worker)
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["PACSFLOW_KAFKA_SASL_PASSWORD"] == {"name": "kafka-user", "key": "password"}
    assert refs["PACSFLOW_S3_SECRET_KEY"] == {"name": "s3-credentials", "key": "secret-key"}
    assert refs["PACSFLOW_INDEX_PASSWORD"]["name"] == "es-credentials"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/pacsflow/tls/kafka", "/etc/pacsflow/tls/s3", "/etc/pacsflow/tls/index"} <= mounts
    secrets = {
        v["secret"]["secretName"]
        for v in worker["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert secrets == {"kafka-ca", "kafka-client", "internal-ca", "arr-ca"}
    assert container["image"] == "registry.example.org/imaging/pacsflow:0.1.0"


def test_inline_credentials_go_to_the_charts_secret(chart: helm.Chart) -> None:
    objects = render(chart, merged(AUTH, INLINE_CREDENTIALS))
    secret = find(objects, "Secret", f"{FULLNAME}-credentials")
    assert set(secret["data"]) == {
        "kafka-sasl-username",
        "kafka-sasl-password",
        "s3-access-key",
        "s3-secret-key",
        "index-username",
        "index-password",
    }
    data = find(objects, "ConfigMap", f"{FULLNAME}-config")["data"]
    assert data["PACSFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert not any("s3cr3t" in str(value) for value in data.values())


def test_ingress_routes_dicom_web_to_the_gateway(chart: helm.Chart) -> None:
    objects = render(chart, PRODUCTION)
    ingress = find(objects, "Ingress", FULLNAME)
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "pacs.example.org"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/dicom-web", "Prefix")
    backend = path["backend"]["service"]
    service = find(objects, "Service", backend["name"])
    assert backend["name"] == f"{FULLNAME}-gateway"
    assert backend["port"]["number"] == service["spec"]["ports"][0]["port"]
    gateway = find(objects, "Deployment", f"{FULLNAME}-gateway")
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert ingress["spec"]["tls"] == [{"secretName": "pacs-tls", "hosts": ["pacs.example.org"]}]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    route = find(objects, "HTTPRoute", FULLNAME)
    (http_rule,) = route["spec"]["rules"]
    assert http_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/dicom-web"}}]
    assert http_rule["backendRefs"] == [{"name": f"{FULLNAME}-gateway", "port": 80}]
    assert http_rule["timeouts"] == {"request": "0s"}


def test_ingress_without_hosts_serves_any_host(chart: helm.Chart) -> None:
    objects = render(chart, merged(AUTH, {"ingress": {"enabled": True}}))
    (rule,) = find(objects, "Ingress", FULLNAME)["spec"]["rules"]
    assert "host" not in rule and rule["http"]["paths"][0]["path"] == "/dicom-web"


def test_defaults_expose_nothing_outside_the_cluster(chart: helm.Chart) -> None:
    objects = render(chart, AUTH)
    assert not kinds(objects, "Ingress") and not kinds(objects, "HTTPRoute")
    assert {s["spec"]["type"] for s in kinds(objects, "Service").values()} == {"ClusterIP"}


def test_keda_scales_workers_on_the_ingest_lag(chart: helm.Chart) -> None:
    objects = render(chart, KEDA)
    scaled = find(objects, "ScaledObject", f"{FULLNAME}-worker")
    (trigger,) = scaled["spec"]["triggers"]
    metadata = trigger["metadata"]
    # The Faust worker's consumer group is its app id; the topic is the ingest topic.
    app_id = inspect.signature(create_faust_app).parameters["app_id"].default
    assert (metadata["consumerGroup"], metadata["topic"]) == (app_id, INGEST_TOPIC)
    assert metadata["bootstrapServers"] == PRODUCTION["kafka"]["bootstrapServers"]
    assert metadata["lagThreshold"] == "20"
    assert (metadata["tls"], metadata["sasl"]) == ("enable", "scram_sha512")
    assert scaled["spec"]["maxReplicaCount"] == 24  # one worker per partition at most
    auth = find(objects, "TriggerAuthentication", f"{FULLNAME}-worker-kafka")
    parameters = {ref["parameter"]: ref["name"] for ref in auth["spec"]["secretTargetRef"]}
    assert parameters == {
        "ca": "kafka-ca",
        "cert": "kafka-client",
        "key": "kafka-client",
        "username": "kafka-user",
        "password": "kafka-user",
    }
    assert f"{FULLNAME}-worker" not in kinds(objects, "HorizontalPodAutoscaler")


def test_a_site_release_without_workers(chart: helm.Chart) -> None:
    objects = render(chart, merged(AUTH, {"worker": {"enabled": False}}))
    assert f"{FULLNAME}-worker" not in kinds(objects, "Deployment")
    assert f"{FULLNAME}-worker" not in kinds(objects, "HorizontalPodAutoscaler")
    assert f"{FULLNAME}-worker" not in kinds(objects, "PodDisruptionBudget")


# --- wrong values fail at install ----------------------------------------------------------

WRONG_VALUES = {
    "replicas as a word": {"stow": {"replicaCount": "two"}},
    "misspelt key": {"qido": {"replicas": 3}},
    "writable root filesystem": {"securityContext": {"readOnlyRootFilesystem": False}},
    "root pods": {"podSecurityContext": {"runAsNonRoot": False}},
    "no partitions": {"kafka": {"partitions": 0}},
    "bootstrap with a scheme": {"kafka": {"bootstrapServers": "kafka://kafka:9092"}},
    "index URL with credentials": {"index": {"url": "http://user:pw@es:9200"}},
    "unknown consistency": {"pacsflow": {"stowConsistency": "eventual"}},
    "unknown record version": {"pacsflow": {"recordVersion": 3}},
    "CPU target above 100": {"wado": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}},
    "bad PDB percentage": {"gateway": {"podDisruptionBudget": {"maxUnavailable": "half"}}},
    "size without unit syntax": {"stow": {"tmpSizeLimit": "20 GB"}},
    "route without parents": {"httpRoute": {"enabled": True}},
    "unknown SASL mechanism": {"kafka": {"sasl": {"enabled": True, "mechanism": "GSSAPI"}}},
}


@pytest.mark.parametrize("values", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
def test_the_schema_rejects_wrong_values(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError):
        render(chart, values)


IMPOSSIBLE_VALUES = {
    "more workers than partitions": (
        {"kafka": {"partitions": 4}, "worker": {"autoscaling": {"maxReplicas": 8}}},
        "exceed kafka.partitions",
    ),
    "SASL without credentials": ({"kafka": {"sasl": {"enabled": True}}}, "kafka.sasl"),
    "half an S3 key pair": ({"objectStore": {"accessKey": "only"}}, "go together"),
    "inline parts larger than a message": (
        {"pacsflow": {"inlineMaxBytes": 8388608}},
        "must fit kafka.maxMessageBytes",
    ),
    "inline parts larger than a message in base64 (version 1 records)": (
        {"pacsflow": {"inlineMaxBytes": 7340032, "recordVersion": 1}},
        "must fit kafka.maxMessageBytes",
    ),
    "basic auth and an API key": (
        {"index": {"auth": {"username": "u", "password": "p", "apiKey": "k"}}},
        "not both",
    ),
    "a CA for a plain-http index": (
        {"index": {"tls": {"caSecret": {"name": "ca"}}}},
        "https:// index.url",
    ),
    "authentication on (the default) without an issuer": ({}, "needs auth.issuer"),
    "an issuer without an audience": (
        {"auth": {"issuer": "https://idp.example.org"}},
        "needs auth.issuer and auth.audience",
    ),
}


def test_authentication_is_on_unless_turned_off(chart: helm.Chart) -> None:
    config = f"{FULLNAME}-config"
    on = find(render(chart, PRODUCTION), "ConfigMap", config)["data"]
    settings = Settings(**{k.removeprefix("PACSFLOW_").lower(): v for k, v in on.items()})
    assert settings.auth.enabled and not settings.insecure
    assert settings.auth.audience == PRODUCTION["auth"]["audience"]
    assert [r.pattern for r in settings.auth.rights] == ["Pacs.{site}.{right}"]
    assert settings.sites == ["north-research"]
    assert settings.audit.syslog_url == "tls://arr.example.org:6514"
    off = find(render(chart, {"auth": {"enabled": False}}), "ConfigMap", config)["data"]
    assert off["PACSFLOW_INSECURE"] == "true" and "PACSFLOW_AUTH_ISSUER" not in off


@pytest.mark.parametrize(
    ("values", "message"), list(IMPOSSIBLE_VALUES.values()), ids=list(IMPOSSIBLE_VALUES)
)
def test_values_that_cannot_work_fail_to_render(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(chart, values)


def test_values_yaml_documents_every_field(chart: helm.Chart) -> None:
    """Each key of values.yaml has a comment: on its line, above it, or above its block."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        above = [lines[n] for n in range(number - 1, -1, -1)]
        documented = False
        for previous in above:
            stripped = previous.strip()
            if stripped.startswith("#"):
                documented = True
                break
            if not stripped:
                continue
            previous_indent = len(previous) - len(previous.lstrip())
            if previous_indent < indent:  # the block's header: documented if it is
                documented = True
                break
            if previous_indent == indent:
                continue  # a sibling: a block of fields described together above
        if not documented:
            undocumented.append(line)
    assert undocumented == []
    # The schema knows every top-level key of values.yaml, and describes the blocks.
    schema = chart.schema
    assert schema is not None and schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set(chart.values) <= set(schema["properties"])


# --- the gateway's nginx configuration -----------------------------------------------------


def _gateway_conf(objects: list[Manifest]) -> str:
    return str(find(objects, "ConfigMap", f"{FULLNAME}-gateway")["data"]["gateway.conf"])


def _directives(text: str) -> list[str]:
    """The configuration without comments and blank lines."""
    stripped = (line.split("#", 1)[0].rstrip() for line in text.splitlines())
    return [line for line in stripped if line.strip()]


def test_gateway_routing_is_deploy_nginx_conf(chart: helm.Chart) -> None:
    """Same map, locations and proxy settings; only the way services are found differs."""
    rendered_conf = _directives(_gateway_conf(render(chart, AUTH)))
    compose = _directives((ROOT / "deploy" / "nginx.conf").read_text())
    compose = [line for line in compose if not line.startswith("resolver ")]
    compose = [
        re.sub(r"set \$(\w+)_backend \1:8080;", r"set $\1_backend pacsflow_\1;", line)
        for line in compose
    ]
    upstreams = [
        line
        for role in HTTP_ROLES
        for line in (
            f"upstream pacsflow_{role} {{",
            f"    server {FULLNAME}-{role}.{NAMESPACE}.svc.cluster.local:8080;",
            "}",
        )
    ]
    at = rendered_conf.index("server {")
    assert rendered_conf[at - len(upstreams) : at] == upstreams
    assert rendered_conf[: at - len(upstreams)] + rendered_conf[at:] == compose


@pytest.fixture(scope="module")
def gateway_port(chart: helm.Chart, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The rendered gateway configuration in a real nginx, in front of a stub per service."""
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    objects = render(chart, AUTH)
    config = find(objects, "ConfigMap", f"{FULLNAME}-gateway")["data"]
    stubs = {name: Stub(name) for name in HTTP_ROLES}
    directory = tmp_path_factory.mktemp("helm-gateway")
    port = free_port()
    gateway = config["gateway.conf"].replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for role, stub in stubs.items():
        address = f"{FULLNAME}-{role}.{NAMESPACE}.svc.cluster.local:8080"
        gateway = gateway.replace(address, f"127.0.0.1:{stub.server_address[1]}")
    (directory / "gateway.conf").write_text(gateway)
    main = config["nginx.conf"]
    replacements = {
        "/tmp/": f"{directory}/",
        "/etc/nginx/pacsflow/gateway.conf": str(directory / "gateway.conf"),
        "access_log /dev/stdout;": f"access_log {directory}/access.log;",
        "worker_processes 2;": "worker_processes 1;\nmaster_process off;",
    }
    for old, new in replacements.items():
        assert old in main, old
        main = main.replace(old, new)
    (directory / "nginx.conf").write_text(main)
    command = [
        str(NGINX),
        "-p",
        str(directory),
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        "stderr",
    ]

    def ready() -> None:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    with nginx_serving(command, stubs, ready):
        yield port


@pytest.mark.parametrize(("method", "target", "service"), ROUTES)
def test_rendered_gateway_routes_each_request(
    gateway_port: int, method: str, target: str, service: str | None
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=30)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if service is None:
        assert response.status == 405
    else:
        assert (response.status, response.getheader("X-Stub-Service")) == (200, service)
