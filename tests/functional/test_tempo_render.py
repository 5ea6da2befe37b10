"""The tempo role in render mode: chart keys the chart really reads, receivers, generator, NodePort.

The defaults are read from the session's shared site.yml render; the production profile and the
Jaeger setting are planned in-process (support.planner, byte for byte what site.yml renders). Bad
input is refused before any write: unit-tested in tests/unit/plugins/plugin_utils/test_settings.py
and test_plan_checks.py.
"""

from __future__ import annotations

import pytest

from support import planner
from support.fixtures import load_rendered

NEW_REPO = "https://grafana-community.github.io/helm-charts"

# Value keys of grafana-community/tempo 2.2.4 (charts/tempo/values.yaml and templates, read at
# grafana-community/helm-charts@3386a1156177). The chart has no values schema: any other key is
# silently ignored. Below these paths the chart passes the value through to Tempo's config as is.
CHART_KEYS = {
    "": {"global", "nameOverride", "fullnameOverride", "replicas", "labels", "annotations", "tempo", "config",
         "tempoQuery", "securityContext", "serviceAccount", "service", "serviceMonitor", "persistence",
         "podAnnotations", "podLabels", "extraLabels", "initContainers", "extraContainers", "extraVolumes",
         "nodeSelector", "tolerations", "affinity", "priorityClassName", "hostAliases", "networkPolicy"},
    "global": {"commonLabels", "imageRegistry"},
    "tempo": {"registry", "repository", "tag", "pullPolicy", "updateStrategy", "resources", "streamOverHttpEnabled",
              "memBallastSizeMbs", "multitenancyEnabled", "reportingEnabled", "metricsGenerator", "ingester",
              "querier", "queryFrontend", "retention", "overrides", "per_tenant_overrides", "server",
              "livenessProbe", "readinessProbe", "storage", "receivers", "securityContext", "extraArgs",
              "extraEnv", "extraEnvFrom", "extraVolumeMounts"},
    "tempo.metricsGenerator": {"enabled", "remoteWriteUrl", "processor", "registry", "storage", "traces_storage"},
    "persistence": {"enabled", "enableStatefulSetAutoDeletePVC", "accessModes", "size", "storageClassName",
                    "annotations", "selector"},
    "service": {"type", "clusterIP", "loadBalancerIP", "loadBalancerSourceRanges", "externalIPs", "protocol",
                "annotations", "labels", "targetPort"},
}
# Passed through verbatim (Tempo config or Kubernetes fields).
OPAQUE = {"tempo.resources", "tempo.receivers", "tempo.overrides", "tempo.storage", "tempo.server",
          "tempo.metricsGenerator.registry", "tempo.metricsGenerator.processor", "global.commonLabels"}


def ignored_keys(values, prefix=""):
    """Dotted paths of keys the tempo chart does not read."""
    bad = []
    for key, value in values.items():
        path = "%s.%s" % (prefix, key) if prefix else key
        if key not in CHART_KEYS.get(prefix, set()):
            bad.append(path)
        elif isinstance(value, dict) and path in CHART_KEYS and path not in OPAQUE:
            bad.extend(ignored_keys(value, path))
    return bad


@pytest.fixture(scope="module")
def tempo(stack_render):
    return load_rendered(stack_render, "helm/monitoring/tempo.yaml")


def test_chart_is_the_community_chart_pinned(tempo):
    assert tempo["chart"] == {"repo": NEW_REPO, "name": "tempo", "version": "2.2.4"}
    assert tempo["release"] == "tempo" and tempo["namespace"] == "monitoring"


def test_values_use_only_keys_the_chart_reads(tempo):
    assert ignored_keys(tempo["values"]) == []


def test_the_key_check_catches_the_tutorials_ignored_keys(tempo):
    """Guard for the guard: the tutorial's top-level storage, compactor and metrics_generator."""
    seed = dict(tempo["values"])
    seed.update({"storage": {"trace": {"backend": "local"}}, "compactor": {"retention": "24h"},
                 "metrics_generator": {"enabled": True}})
    assert sorted(ignored_keys(seed)) == ["compactor", "metrics_generator", "storage"]
    assert ignored_keys({"tempo": {"metricsGenerator": {"remote_write_url": "x"}}}) == [
        "tempo.metricsGenerator.remote_write_url"]


def test_receivers_retention_and_streaming(tempo):
    t = tempo["values"]["tempo"]
    assert t["retention"] == "24h"
    assert t["streamOverHttpEnabled"] is True
    assert t["receivers"]["otlp"] == {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                                    "http": {"endpoint": "0.0.0.0:4318"}}}
    # Jaeger off: every protocol nulled (the chart's Service template needs the jaeger key itself)
    assert t["receivers"]["jaeger"] == {"protocols": {"grpc": None, "thrift_binary": None,
                                                      "thrift_compact": None, "thrift_http": None}}
    assert t["storage"]["trace"]["backend"] == "local"


def test_metrics_generator_writes_to_the_prometheus_roles_server(tempo, stack_render):
    prometheus = load_rendered(stack_render, "helm/monitoring/prometheus.yaml")
    server = prometheus["values"]["server"]
    assert "web.enable-remote-write-receiver" in server["extraFlags"]
    gen = tempo["values"]["tempo"]["metricsGenerator"]
    assert gen["enabled"] is True
    assert gen["remoteWriteUrl"] == "http://%s-server.%s.svc.cluster.local:%d/api/v1/write" % (
        prometheus["release"], prometheus["namespace"], server["service"]["servicePort"])
    processors = tempo["values"]["tempo"]["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert sorted(processors) == ["service-graphs", "span-metrics"]


def test_kind_profile_adds_a_query_node_port_service(tempo, stack_render):
    svc = load_rendered(stack_render, "manifests/monitoring/Service-tempo-query-nodeport.yaml")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [{"name": "http-query", "protocol": "TCP", "port": 3200, "targetPort": 3200,
                                     "nodePort": 30200}]
    # the chart's pod selector labels: app.kubernetes.io/name=<chart name>, instance=<release>
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/instance": "tempo"}
    assert tempo["values"]["service"] == {"type": "ClusterIP"}
    assert tempo["values"]["persistence"] == {"enabled": False}


def test_production_profile():
    documents = planner.objects({"agw_obs_profile": "production", "tempo_storage_class": "fast-ssd"}, roles=["tempo"])
    values = documents["helm/monitoring/tempo.yaml"]["values"]
    assert values["persistence"] == {"enabled": True, "size": "10Gi", "storageClassName": "fast-ssd"}
    assert values["tempo"]["resources"]["requests"]["memory"] == "2Gi"
    assert ignored_keys(values) == []
    # no query NodePort Service in production; its fence and the labelled namespace instead
    assert sorted(documents) == ["helm/monitoring/tempo.yaml", "manifests/_cluster/Namespace-monitoring.yaml",
                                 "manifests/monitoring/NetworkPolicy-tempo.yaml"]


def test_jaeger_on_keeps_the_charts_jaeger_receivers():
    values = planner.objects({"tempo_jaeger_enabled": True, "tempo_metrics_generator_enabled": False},
                             roles=["tempo"])["helm/monitoring/tempo.yaml"]["values"]
    t = values["tempo"]
    assert "jaeger" not in t["receivers"]
    assert t["metricsGenerator"] == {"enabled": False}
    assert "overrides" not in t
    assert ignored_keys(values) == []
