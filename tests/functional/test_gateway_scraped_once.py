"""Each gateway pod is scraped once, in the format the proxy serves, on the real Prometheus 3.14.

1. Service discovery for real: Prometheus' kubernetes pod discovery runs against the real control
   plane (the session's, support.session), where, in this module's namespaces, gateway pods,
   another Gateway's pod, a pod of a Gateway with the same name in another namespace, an annotated
   app pod and a plain pod exist (created through the API, their status set to Running with an IP:
   no kubelet runs here). The gateway job and the discovery of the chart's kubernetes-pods job, as
   the prometheus role plans them for this module's gateway namespace (support.planner), run with
   only ``kubeconfig_file`` added. The chart's relabel rules are not ours to copy: a stand-in keeps
   what decides here (keep pods annotated prometheus.io/scrape=true, address from
   prometheus.io/port, namespace and pod labels). A job with the chart's own discovery (every pod)
   shows the double scrape the planned discovery removes, and the gateway job planned for a
   label pattern (which needs prometheus_kubernetes_pods_exclude_gateway=false) keeps every pod
   whose Gateway name matches. Other modules' pods on the shared plane are left out of the counts.
2. Scrape protocols: the rendered gateway job scrapes targets that answer the way the proxy
   does (tests/support/exposition.py), discovery swapped for static targets carrying a gateway
   pod's meta labels as in test_prometheus_server.py.
"""

from __future__ import annotations

import collections
import copy

import pytest
import yaml

from support import planner
from support.exposition import GatewayMetricsTarget, answer_main, answer_v141
from support.kubeapi import Api

pytestmark = pytest.mark.services

GATEWAY_LABELS = {"gateway.networking.k8s.io/gateway-name": "agentgateway-proxy",
                  "gateway.networking.k8s.io/gateway-class-name": "agentgateway",
                  "app.kubernetes.io/name": "agentgateway-proxy"}
CANARY_LABELS = dict(GATEWAY_LABELS, **{"gateway.networking.k8s.io/gateway-name": "agentgateway-canary"})
OTHER_LABELS = dict(GATEWAY_LABELS, **{"gateway.networking.k8s.io/gateway-name": "other-gateway"})
# what the agentgateway deployer puts on proxy pods (reference: scrape annotations pointing at 15020)
SCRAPE_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/port": "15020", "prometheus.io/path": "/metrics"}
PROXY_PORTS = [{"name": "metrics", "containerPort": 15020}, {"name": "readiness", "containerPort": 15021},
               {"name": "listener-8080", "containerPort": 8080}]
PATTERN = {"gateway.networking.k8s.io/gateway-name": "agentgateway-.*"}


def pods(gateway_ns):
    """[(namespace, name, labels, annotations, ports)] of this module's pods; the gateway's namespace first."""
    team, apps = gateway_ns + "-team-a", gateway_ns + "-apps"
    return [
        (gateway_ns, "agentgateway-proxy-7d9c-a", GATEWAY_LABELS, SCRAPE_ANNOTATIONS, PROXY_PORTS),
        (gateway_ns, "agentgateway-proxy-7d9c-b", GATEWAY_LABELS, SCRAPE_ANNOTATIONS, PROXY_PORTS),
        (gateway_ns, "other-gateway-5f6b-c", OTHER_LABELS, SCRAPE_ANNOTATIONS, PROXY_PORTS),
        (gateway_ns, "agentgateway-canary-41ab-e", CANARY_LABELS, SCRAPE_ANNOTATIONS, PROXY_PORTS),
        (team, "agentgateway-proxy-66f4-d", GATEWAY_LABELS, SCRAPE_ANNOTATIONS, PROXY_PORTS),
        (apps, "billing-api-0", {"app": "billing-api"}, {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"},
         [{"name": "http-metrics", "containerPort": 9100}]),
        (apps, "quiet-0", {"app": "quiet"}, {}, [{"name": "http", "containerPort": 8080}]),
    ]


def stand_in_for_the_charts_annotation_rules():
    return [
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "regex": "true"},
        {"action": "replace",
         "source_labels": ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
         "separator": ":", "target_label": "__address__"},
        {"action": "replace", "source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"action": "replace", "source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]


@pytest.fixture(scope="module")
def cluster_with_pods(controlplane, module_namespace):
    """The control plane with this module's pods Running, each with an IP; returns the pods."""
    api = Api(controlplane)
    planted = pods(module_namespace)
    for namespace in sorted({p[0] for p in planted}):
        api.request("/api/v1/namespaces", "POST",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for number, (namespace, name, labels, annotations, ports) in enumerate(planted, start=10):
        api.request("/api/v1/namespaces/%s/pods" % namespace, "POST", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/main:1", "ports": ports}]},
        })
        ip = "10.244.0.%d" % number
        api.patch_status("/api/v1/namespaces/%s/pods/%s" % (namespace, name),
                         {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})
    return planted


def with_kubeconfig(discovery, kubeconfig):
    return [dict(entry, kubeconfig_file=str(kubeconfig)) for entry in copy.deepcopy(discovery)]


def active_pods(server, namespaces):
    """{scrape pool: Counter((namespace, pod))} of the active targets in ``namespaces``."""
    out = collections.defaultdict(collections.Counter)
    for target in server.api("/api/v1/targets", state="active")["activeTargets"]:
        where = (target["labels"].get("namespace"), target["labels"].get("pod"))
        if where[0] in namespaces:
            out[target["scrapePool"]][where] += 1
    return out


def planned_values(settings):
    return planner.objects(settings, roles=["prometheus"])["helm/monitoring/prometheus.yaml"]["values"]


def test_each_gateway_pod_is_scraped_once(controlplane, cluster_with_pods, module_namespace, prometheus_factory):
    kubeconfig = controlplane.kubeconfig_path
    values = planned_values({"agw_obs_gateway_namespace": module_namespace})
    gateway_job = yaml.safe_load(values["extraScrapeConfigs"])[0]
    gateway_job["kubernetes_sd_configs"] = with_kubeconfig(gateway_job["kubernetes_sd_configs"], kubeconfig)
    planned = values["scrapeConfigs"]["kubernetes-pods"]
    assert set(planned) == {"kubernetes_sd_configs"}, "only the discovery of the chart's job is set"
    chart_pods = {"job_name": "kubernetes-pods", "relabel_configs": stand_in_for_the_charts_annotation_rules(),
                  "kubernetes_sd_configs": with_kubeconfig(planned["kubernetes_sd_configs"], kubeconfig)}
    chart_default = dict(chart_pods, job_name="kubernetes-pods-chart-discovery",
                         kubernetes_sd_configs=with_kubeconfig([{"role": "pod"}], kubeconfig))
    # a label pattern: allowed with the chart's job left alone, which then finds the gateway pods too
    pattern_values = planned_values({"agw_obs_gateway_namespace": module_namespace,
                                     "prometheus_gateway_pod_labels": PATTERN,
                                     "prometheus_kubernetes_pods_exclude_gateway": False})
    assert "scrapeConfigs" not in pattern_values, "the chart's kubernetes-pods job is left alone"
    pattern_job = yaml.safe_load(pattern_values["extraScrapeConfigs"])[0]
    assert {"action": "keep", "regex": "agentgateway-.*",
            "source_labels": ["__meta_kubernetes_pod_label_gateway_networking_k8s_io_gateway_name"]} \
        in pattern_job["relabel_configs"]
    pattern_job.update(job_name="agentgateway-pattern",
                       kubernetes_sd_configs=with_kubeconfig(pattern_job["kubernetes_sd_configs"], kubeconfig))
    server = prometheus_factory({
        "global": {"scrape_interval": "5s", "scrape_timeout": "1s"},
        "scrape_configs": [gateway_job, chart_pods, chart_default, pattern_job],
    })
    mine = {p[0] for p in cluster_with_pods}
    every_annotated = {(ns, name) for ns, name, _l, annotations, _p in cluster_with_pods if annotations}
    ours = {(ns, name) for ns, name, labels, _a, _p in cluster_with_pods
            if ns == module_namespace and labels is GATEWAY_LABELS}
    matching = ours | {(ns, name) for ns, name, labels, _a, _p in cluster_with_pods
                       if ns == module_namespace and labels is CANARY_LABELS}

    def discovered():
        found = active_pods(server, mine)
        return found if set(found["kubernetes-pods-chart-discovery"]) == every_annotated \
            and set(found["agentgateway-pattern"]) == matching else None

    server.wait_for(discovered, timeout=60, what="the annotated pods discovered")
    found = active_pods(server, mine)

    assert len(ours) == 2 and dict(found["agentgateway"]) == {pod: 1 for pod in ours}
    assert dict(found["kubernetes-pods"]) == {pod: 1 for pod in every_annotated - ours}
    for pod in every_annotated:
        assert found["agentgateway"][pod] + found["kubernetes-pods"][pod] == 1, pod
    # the chart's own discovery finds the gateway pods again: the double scrape this removes
    for pod in ours:
        assert found["agentgateway"][pod] + found["kubernetes-pods-chart-discovery"][pod] == 2, pod
    assert dict(found["agentgateway-pattern"]) == {pod: 1 for pod in matching} and len(matching) == 3


# ---- scrape protocols -------------------------------------------------------------------------

GATEWAY_POD_META = {
    "__meta_kubernetes_namespace": "agentgateway-system",
    "__meta_kubernetes_pod_name": "agentgateway-proxy-7d9c-a",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_container_port_number": "15020",
    "__meta_kubernetes_pod_label_gateway_networking_k8s_io_gateway_name": "agentgateway-proxy",
}


@pytest.fixture
def gateway_targets():
    started = []

    def start(answer):
        target = GatewayMetricsTarget(answer)
        started.append(target)
        return target

    yield start
    for target in started:
        target.stop()


def static_job(prometheus_values, name, address, drop_protocols=False):
    job = yaml.safe_load(prometheus_values["extraScrapeConfigs"])[0]
    del job["kubernetes_sd_configs"]
    job["job_name"] = name
    job["static_configs"] = [{"targets": [address], "labels": GATEWAY_POD_META}]
    if drop_protocols:
        del job["scrape_protocols"]
    return job


def test_the_gateway_job_asks_for_a_format_the_proxy_serves_well(prometheus_values, prometheus_factory,
                                                                 gateway_targets):
    main, v141, main_default = (gateway_targets(answer) for answer in (answer_main, answer_v141, answer_main))
    server = prometheus_factory({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            static_job(prometheus_values, "agentgateway", main.address),
            static_job(prometheus_values, "agentgateway-v141", v141.address),
            static_job(prometheus_values, "prometheus-default-protocols", main_default.address, drop_protocols=True),
        ],
    })

    def all_scraped():
        targets = server.api("/api/v1/targets", state="active")["activeTargets"]
        return targets if len(targets) == 3 and all(t["lastScrape"] != "0001-01-01T00:00:00Z" for t in targets) \
            and all(t["health"] != "unknown" for t in targets) else None

    targets = {t["scrapePool"]: t for t in server.wait_for(all_scraped, what="every target scraped once")}
    assert targets["agentgateway"]["health"] == "up", targets["agentgateway"]["lastError"]
    assert targets["agentgateway-v141"]["health"] == "up", targets["agentgateway-v141"]["lastError"]
    assert main.served[0] == "application/vnd.google.protobuf"
    assert v141.served[0] == "application/openmetrics-text"
    # Prometheus' default protocols get the text/plain answer: OpenMetrics text the classic parser refuses
    assert targets["prometheus-default-protocols"]["health"] == "down"
    assert 'invalid metric type "info"' in targets["prometheus-default-protocols"]["lastError"]
    assert main_default.served[0] == "text/plain"

    for job in ("agentgateway", "agentgateway-v141"):
        result = server.wait_for(lambda j=job: server.query('agentgateway_requests_total{job="%s"}' % j), what=job)
        assert float(result[0]["value"][1]) == 42
        assert result[0]["metric"]["pod"] == "agentgateway-proxy-7d9c-a"
