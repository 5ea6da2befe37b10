"""A local stack for the verification: real Prometheus 3.14 and WireMock, contract Grafana/Tempo/Loki.

``LocalStack`` starts, on 127.0.0.1 with ports picked at run time:

* the real WireMock with the mock_backend role's rendered mappings (key ``mock-key``): its own, or
  a running one (the pytest fixture ``local_stack`` takes the session's, ``mock_wiremock``);
* ``GatewayStandIn`` (tests/support/contract.py) in front of it, routing like the proxy by the render's
  HTTPRoutes and policies (chat, the prompt guard and its webhook, the retried route, MCP), with a metrics
  port that answers like agentgateway v1.4.1 (OpenMetrics by negotiation, its families, label sets and
  buckets; ``kubernetes``: the xDS and cgroup families of a proxy fed by the controller too);
* a kube-state-metrics stand-in with the proxy pod's container limits, requests and restarts;
* the real Prometheus 3.14 scraping that metrics port every second as job ``job`` (default
  ``agentgateway``: give the prometheus values rendered for the same job name), and kube-state-metrics
  as job ``kubernetes-service-endpoints`` with honor_labels, as the prometheus chart's job does, with
  the prometheus role's rendered alerting and recording rules;
* contract servers for Tempo, Loki and Grafana (datasources pointing at them and at the real
  Prometheus; the grafana role's dashboards).

``service_urls`` are what ``agw_obs_access=url`` needs. Everything is stopped by PID / shutdown.
tests/support/localstack.py runs the same stack as a process of its own (molecule's default scenario).
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml

from support.contract import ContractGrafana, ContractKubeStateMetrics, ContractLoki, ContractTempo, GatewayStandIn
from support.fixtures import REPO, rendered_manifests
from support.prometheus import PrometheusServer
from support.wiremock import start_from_render

GRAFANA_PASSWORD = "contract-admin-password"
BACKEND_KEY = "mock-key"
# The price catalog the gateway gets from the site's defaults (gateway_observability_model_prices: provider
# -> model -> USD per 1M tokens), the one a real proxy prices the verification's requests with.
PRICES = yaml.safe_load((REPO / "roles" / "gateway_observability" / "defaults" / "main.yml").read_text(
    encoding="utf-8"))["gateway_observability_model_prices"]
GATEWAY_TARGET_LABELS = {"namespace": "agentgateway-system", "pod": "agentgateway-proxy-6f7d9c-x2x7q",
                         "gateway_networking_k8s_io_gateway_name": "agentgateway-proxy"}
# The proxy pod as kube-state-metrics describes it (its namespace and pod are the gateway target's).
PROXY_POD = {"namespace": GATEWAY_TARGET_LABELS["namespace"], "pod": GATEWAY_TARGET_LABELS["pod"],
             "uid": "5c0f4a8e-3d2b-4f71-9a65-0e8b7d1c2f43", "node": "agw-obs-control-plane"}
# The prometheus chart's kubernetes-service-endpoints job (honor_labels: true) finds kube-state-metrics by its
# Service and labels the target with the Service's labels, namespace, service and node.
KSM_JOB = "kubernetes-service-endpoints"
KSM_TARGET_LABELS = {"namespace": "monitoring", "service": "prometheus-kube-state-metrics",
                     "node": PROXY_POD["node"], "app_kubernetes_io_name": "kube-state-metrics",
                     "app_kubernetes_io_instance": "prometheus"}
# the proxy's resources when the render has no AgentgatewayParameters (the gateway_observability defaults)
PROXY_RESOURCES = {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "200m", "memory": "128Mi"}}
_QUANTITY = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}


def quantity(text):
    """A Kubernetes quantity as kube-state-metrics reports it: "256Mi" -> 268435456, "500m" -> 0.5."""
    number, suffix = re.match(r"^([0-9.]+)([A-Za-z]*)$", str(text)).groups()
    return float(number) * _QUANTITY[suffix]


def proxy_resources(render):
    """{limits, requests} of the proxy container: the render's AgentgatewayParameters spec.resources, else
    PROXY_RESOURCES; each {resource: value in kube-state-metrics' units}."""
    found = None
    if render:
        found = next((obj["spec"].get("resources") for obj in rendered_manifests(render).values()
                      if isinstance(obj, dict) and obj.get("kind") == "AgentgatewayParameters"
                      and (obj.get("spec") or {}).get("resources")), None)
    found = found or PROXY_RESOURCES
    return {kind: {name: quantity(value) for name, value in (found.get(kind) or {}).items()}
            for kind in ("limits", "requests")}


def dashboards():
    out = {}
    for path in sorted((REPO / "roles" / "grafana" / "files" / "dashboards").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["uid"]] = data
    return out


class LocalStack(object):
    """The stack; ``wiremock``: a running WireMock to use instead of starting one (it is left running);
    ``job``: the scrape job name of the gateway target (``prometheus_values``: rendered for that job);
    ``kubernetes``: the stand-in writes what a proxy fed by the controller on a cgroup v2 node writes."""

    def __init__(self, prometheus_binary, workdir, mock_render, prometheus_values, loki=True,
                 grafana_password=GRAFANA_PASSWORD, wiremock=None, job="agentgateway", kubernetes=True):
        self.workdir = pathlib.Path(workdir)
        self.started = []
        try:
            self.wiremock = wiremock
            if self.wiremock is None:
                self.wiremock = start_from_render(mock_render, self.workdir / "wiremock")
                self.started.append(self.wiremock)
            self.tempo = ContractTempo()
            self.started.append(self.tempo)
            self.loki = ContractLoki() if loki else None
            if self.loki:
                self.started.append(self.loki)
            self.gateway = GatewayStandIn(self.wiremock.url, BACKEND_KEY, self.tempo, self.loki, PRICES,
                                          render=mock_render, kubernetes=kubernetes)
            self.started.append(self.gateway)
            resources = proxy_resources(mock_render)
            if self.gateway.memory_limit():  # the kubelet writes the container's limit into its cgroup
                resources["limits"]["memory"] = self.gateway.memory_limit()
            self.ksm = ContractKubeStateMetrics(PROXY_POD["namespace"], PROXY_POD["pod"], PROXY_POD["uid"],
                                                PROXY_POD["node"], resources["limits"], resources["requests"])
            self.started.append(self.ksm)
            self.prometheus = self.start_prometheus(prometheus_binary, prometheus_values, self.gateway.metrics_address,
                                                    job=job, ksm_address="127.0.0.1:%d" % self.ksm.port)
            datasources = [{"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": self.prometheus.url},
                           {"uid": "tempo", "name": "Tempo", "type": "tempo", "url": self.tempo.url}]
            if self.loki:
                datasources.append({"uid": "loki", "name": "Loki", "type": "loki", "url": self.loki.url})
            self.grafana = ContractGrafana(grafana_password, datasources, dashboards())
            self.started.append(self.grafana)
        except Exception:
            self.stop()
            raise

    def start_prometheus(self, binary, prometheus_values, address, name="prometheus", job="agentgateway",
                         ksm_address=None):
        scrape_configs = [{"job_name": job, "scrape_interval": "1s",
                           "static_configs": [{"targets": [address], "labels": GATEWAY_TARGET_LABELS}]}]
        if ksm_address:
            scrape_configs.append({"job_name": KSM_JOB, "scrape_interval": "1s", "honor_labels": True,
                                   "static_configs": [{"targets": [ksm_address], "labels": KSM_TARGET_LABELS}]})
        server = PrometheusServer(binary, self.workdir / name, {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": scrape_configs,
        }, rule_files={
            "alerting_rules.yml": prometheus_values["serverFiles"]["alerting_rules.yml"],
            "recording_rules.yml": prometheus_values["serverFiles"]["recording_rules.yml"],
        })
        self.started.append(server)
        return server

    def service_urls(self):
        return {"gateway": self.gateway.url, "gateway_metrics": self.gateway.metrics_url,
                "mock_backend": self.wiremock.url, "prometheus": self.prometheus.url, "tempo": self.tempo.url,
                "loki": self.loki.url if self.loki else "", "grafana": self.grafana.url}

    def stop(self):
        for item in reversed(self.started):
            try:
                item.stop()
            except Exception:  # noqa: BLE001 - stop everything we can
                pass
        self.started = []


@pytest.fixture
def local_stack(prometheus_binary, tmp_path, mock_render, prometheus_values, mock_wiremock):
    """The stack around the session's WireMock (tests must not stop it)."""
    stack = LocalStack(prometheus_binary, tmp_path, mock_render, prometheus_values, wiremock=mock_wiremock)
    yield stack
    stack.stop()
