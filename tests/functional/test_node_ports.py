"""NodePorts across the roles: site.yml's check refuses two settings on one NodePort before any write.

A NodePort belongs to one Service. The tutorial puts Grafana and the gateway both on 30080: in a
cluster the second Service would be refused after the first releases were already installed.
"""

from __future__ import annotations

import pytest

from support.fixtures import assert_rejected_before_writing, render_site


@pytest.mark.parametrize("extra_vars, names", [
    # the tutorial's collision
    ({"gateway_observability_listener_node_port": 30080},
     ["NodePort 30080", "grafana_node_port=30080 (Grafana)",
      "gateway_observability_listener_node_port=30080 (gateway listener)"]),
    ({"prometheus_node_port": 30200},
     ["NodePort 30200", "prometheus_node_port=30200 (Prometheus)", "tempo_query_node_port=30200 (Tempo query API)"]),
    ({"grafana_node_port": 30091},
     ["NodePort 30091", "grafana_node_port=30091", "gateway_observability_metrics_node_port=30091 (gateway metrics)"]),
], ids=["grafana-gateway", "prometheus-tempo", "grafana-gateway-metrics"])
def test_a_node_port_collision_fails_naming_both_settings_before_any_write(tmp_path, extra_vars, names):
    out = tmp_path / "r"
    proc = render_site(out, extra_vars, check=False)
    assert_rejected_before_writing(proc, out, *names)
    # it is the cross-role check that refused it, in the checks play
    assert "Check that every NodePort is valid and used by one setting only" in proc.stdout


def test_a_port_no_service_uses_as_node_port_is_no_collision(tmp_path):
    # Grafana as ClusterIP uses no NodePort, so its grafana_node_port may equal the gateway's.
    proc = render_site(tmp_path, {"grafana_service_type": "ClusterIP", "gateway_observability_listener_node_port": 30080})
    assert proc.returncode == 0
