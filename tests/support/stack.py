"""A local stack for the verification: real Prometheus 3.14 and WireMock, contract Grafana/Tempo/Loki.

``LocalStack`` starts, on 127.0.0.1 with ports picked at run time:

* the real WireMock with the mock_backend role's rendered mappings (key ``mock-key``): its own, or
  a running one (the pytest fixture ``local_stack`` takes the session's, ``mock_wiremock``);
* ``GatewayStandIn`` (tests/support/contract.py) in front of it, with a metrics port;
* the real Prometheus 3.14 scraping that metrics port every second as job ``agentgateway``, with
  the prometheus role's rendered alerting and recording rules;
* contract servers for Tempo, Loki and Grafana (datasources pointing at them and at the real
  Prometheus; the grafana role's dashboards).

``service_urls`` are what ``agw_obs_access=url`` needs. Everything is stopped by PID / shutdown.
tests/support/localstack.py runs the same stack as a process of its own (molecule's default scenario).
"""

from __future__ import annotations

import json
import pathlib

import pytest

from support.contract import ContractGrafana, ContractLoki, ContractTempo, GatewayStandIn
from support.fixtures import REPO
from support.prometheus import PrometheusServer
from support.wiremock import start_from_render

GRAFANA_PASSWORD = "contract-admin-password"
BACKEND_KEY = "mock-key"
# the example catalog of gateway_observability (USD per 1M tokens): gpt-4 30/60, gpt-3.5-turbo 0.5/1.5
PRICES = {"gpt-4": (30.0, 60.0), "gpt-3.5-turbo": (0.5, 1.5)}
GATEWAY_TARGET_LABELS = {"namespace": "agentgateway-system", "pod": "agentgateway-proxy-6f7d9c-x2x7q",
                         "gateway_networking_k8s_io_gateway_name": "agentgateway-proxy"}


def dashboards():
    out = {}
    for path in sorted((REPO / "roles" / "grafana" / "files" / "dashboards").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["uid"]] = data
    return out


class LocalStack(object):
    """The stack; ``wiremock``: a running WireMock to use instead of starting one (it is left running)."""

    def __init__(self, prometheus_binary, workdir, mock_render, prometheus_values, loki=True,
                 grafana_password=GRAFANA_PASSWORD, wiremock=None):
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
            self.gateway = GatewayStandIn(self.wiremock.url, BACKEND_KEY, self.tempo, self.loki, PRICES)
            self.started.append(self.gateway)
            self.prometheus = self.start_prometheus(prometheus_binary, prometheus_values, self.gateway.metrics_address)
            datasources = [{"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": self.prometheus.url},
                           {"uid": "tempo", "name": "Tempo", "type": "tempo", "url": self.tempo.url}]
            if self.loki:
                datasources.append({"uid": "loki", "name": "Loki", "type": "loki", "url": self.loki.url})
            self.grafana = ContractGrafana(grafana_password, datasources, dashboards())
            self.started.append(self.grafana)
        except Exception:
            self.stop()
            raise

    def start_prometheus(self, binary, prometheus_values, address, name="prometheus", job="agentgateway"):
        server = PrometheusServer(binary, self.workdir / name, {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "scrape_interval": "1s",
                                "static_configs": [{"targets": [address], "labels": GATEWAY_TARGET_LABELS}]}],
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
