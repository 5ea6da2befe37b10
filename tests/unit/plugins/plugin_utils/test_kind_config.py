"""Unit tests of plugin_utils/kind_config.py: NodePort checks, the port plan, the kind config, existing clusters."""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils.kind_config import (
    KindConfigError,
    claim_host_port,
    cluster_config,
    missing_port_mappings,
    node_port_problems,
    port_plan,
)

IMAGE = "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
GRAFANA = {"setting": "grafana_node_port", "port": 30080, "role": "grafana", "what": "Grafana"}
PROMETHEUS = {"setting": "prometheus_node_port", "port": 30090, "role": "prometheus", "what": "Prometheus"}
LISTENER = {"setting": "gateway_observability_listener_node_port", "port": 30088, "role": "gateway_observability",
            "what": "gateway listener"}
TRAFFIC = {"setting": "traffic_base_url", "url": "http://localhost:8080",
           "node_port_setting": "gateway_observability_listener_node_port"}


def test_unique_ports_have_no_problem():
    assert node_port_problems([GRAFANA, PROMETHEUS, LISTENER]) == []
    assert node_port_problems([]) == []


def test_the_tutorials_collision_names_both_settings():
    # The tutorial puts Grafana and the gateway both on 30080.
    problems = node_port_problems([GRAFANA, dict(LISTENER, port=30080)])
    assert len(problems) == 1
    assert "NodePort 30080" in problems[0]
    assert "grafana_node_port=30080 (Grafana)" in problems[0]
    assert "gateway_observability_listener_node_port=30080 (gateway listener)" in problems[0]


def test_three_settings_on_one_port_are_one_problem_naming_all():
    problems = node_port_problems([GRAFANA, dict(PROMETHEUS, port=30080), dict(LISTENER, port="30080")])
    assert len(problems) == 1
    for name in ("grafana_node_port", "prometheus_node_port", "gateway_observability_listener_node_port"):
        assert name in problems[0]


@pytest.mark.parametrize("port", [29999, 32768, "abc", None, True, "", 0])
def test_ports_outside_the_node_port_range_are_named(port):
    problems = node_port_problems([dict(GRAFANA, port=port)])
    assert problems == ["grafana_node_port=%s (Grafana) is not a port in Kubernetes' NodePort range 30000-32767." % port]


def test_a_string_port_counts_as_its_number():
    assert node_port_problems([dict(GRAFANA, port="30090"), PROMETHEUS]) != []


def test_entries_must_name_their_setting():
    with pytest.raises(KindConfigError, match="lacks setting"):
        node_port_problems([{"port": 30080, "what": "x"}])


@pytest.mark.parametrize("url, port", [
    ("http://localhost:8080", 8080),
    ("http://127.0.0.1:9000", 9000),
    ("http://[::1]:8081", 8081),
    ("http://LOCALHOST", 80),
    ("https://localhost", 443),
    ("http://gateway.example.com:8080", None),   # not this machine: no host port claim
    ("http://10.0.0.5:8080", None),
])
def test_a_url_claims_its_port_only_on_this_machine(url, port):
    assert claim_host_port(dict(TRAFFIC, url=url)) == port


def test_a_claim_with_a_bad_port_is_refused():
    with pytest.raises(KindConfigError, match="traffic_base_url=http://localhost:99999"):
        claim_host_port(dict(TRAFFIC, url="http://localhost:99999"))
    with pytest.raises(KindConfigError, match="neither host_port nor url"):
        claim_host_port({"setting": "x", "node_port_setting": "y"})


def test_plan_maps_each_node_port_to_itself_or_to_the_claimed_host_port():
    plan = port_plan([PROMETHEUS, GRAFANA, LISTENER], [TRAFFIC])
    assert plan["problems"] == []
    assert plan["mappings"] == [
        {"setting": "grafana_node_port", "what": "Grafana", "node_port": 30080, "host_port": 30080,
         "host_port_setting": "grafana_node_port"},
        {"setting": "gateway_observability_listener_node_port", "what": "gateway listener", "node_port": 30088,
         "host_port": 8080, "host_port_setting": "traffic_base_url"},
        {"setting": "prometheus_node_port", "what": "Prometheus", "node_port": 30090, "host_port": 30090,
         "host_port_setting": "prometheus_node_port"},
    ]


def test_a_claim_for_a_port_that_is_not_a_node_port_changes_nothing():
    # production: the listener is a LoadBalancer, so no listener NodePort is declared
    plan = port_plan([GRAFANA], [TRAFFIC])
    assert [(m["node_port"], m["host_port"]) for m in plan["mappings"]] == [(30080, 30080)]


def test_plan_refuses_two_mappings_on_one_host_port():
    plan = port_plan([GRAFANA, LISTENER], [dict(TRAFFIC, url="http://localhost:30080")])
    assert plan["mappings"] == []
    assert len(plan["problems"]) == 1
    problem = plan["problems"][0]
    assert "host port 30080" in problem
    assert "grafana_node_port=30080 (Grafana)" in problem
    assert "gateway_observability_listener_node_port=30088 (gateway listener) on the host port of traffic_base_url" in problem


def test_plan_stops_at_node_port_problems():
    plan = port_plan([GRAFANA, dict(LISTENER, port=30080)], [TRAFFIC])
    assert plan["mappings"] == [] and "NodePort 30080" in plan["problems"][0]


def test_cluster_config_has_one_pinned_node_with_every_mapping():
    plan = port_plan([GRAFANA, LISTENER], [TRAFFIC])
    config = cluster_config(plan["mappings"], "agw-obs", IMAGE, "127.0.0.1")
    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "agw-obs",
        "nodes": [{
            "role": "control-plane",
            "image": IMAGE,
            "extraPortMappings": [
                {"containerPort": 30080, "hostPort": 30080, "listenAddress": "127.0.0.1", "protocol": "TCP"},
                {"containerPort": 30088, "hostPort": 8080, "listenAddress": "127.0.0.1", "protocol": "TCP"},
            ],
        }],
    }


def test_cluster_config_without_node_ports_has_no_mappings():
    assert "extraPortMappings" not in cluster_config([], "agw-obs", IMAGE)["nodes"][0]


@pytest.mark.parametrize("kwargs, message", [
    ({"image": "kindest/node:v1.36.1"}, "pinned by digest"),
    ({"listen_address": "localhost"}, "not an IP address"),
    ({"name": ""}, "non-empty"),
])
def test_cluster_config_refuses_bad_input(kwargs, message):
    args = dict({"name": "agw-obs", "image": IMAGE, "listen_address": "127.0.0.1"}, **kwargs)
    with pytest.raises(KindConfigError, match=message):
        cluster_config([], args["name"], args["image"], args["listen_address"])


# What `docker inspect <node>` prints for a kind node (Docker Engine API ContainerInspect:
# HostConfig.PortBindings is a PortMap, "<port>/<protocol>" -> [PortBinding {HostIp, HostPort (a string)}];
# https://docs.docker.com/reference/api/engine/version/v1.57/schemas/PortBinding/). kind publishes every
# extraPortMappings entry and the API server port; podman inspect has the same HostConfig.PortBindings.
def inspect(*bindings):
    port_bindings = {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41235"}]}
    for container_port, host_port in bindings:
        port_bindings["%d/tcp" % container_port] = [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]
    return [{"Name": "/agw-obs-control-plane", "HostConfig": {"PortBindings": port_bindings}}]


def test_an_existing_cluster_with_every_mapping_misses_nothing():
    plan = port_plan([GRAFANA, LISTENER], [TRAFFIC])["mappings"]
    assert missing_port_mappings(inspect((30080, 30080), (30088, 8080)), plan) == []


def test_an_existing_cluster_without_a_mapping_names_the_setting():
    plan = port_plan([GRAFANA, LISTENER, PROMETHEUS], [TRAFFIC])["mappings"]
    missing = missing_port_mappings(inspect((30080, 30080), (30088, 8080)), plan)
    assert [m["setting"] for m in missing] == ["prometheus_node_port"]


def test_a_mapping_to_another_host_port_is_missing():
    plan = port_plan([LISTENER], [TRAFFIC])["mappings"]
    assert [m["host_port"] for m in missing_port_mappings(inspect((30088, 30088)), plan)] == [8080]


def test_mappings_on_a_second_node_count():
    plan = port_plan([GRAFANA], [])["mappings"]
    nodes = inspect() + [{"HostConfig": {"PortBindings": {"30080/tcp": [{"HostIp": "", "HostPort": "30080"}]}}}]
    assert missing_port_mappings(nodes, plan) == []


def test_udp_bindings_do_not_count_for_tcp():
    plan = port_plan([GRAFANA], [])["mappings"]
    node = {"HostConfig": {"PortBindings": {"30080/udp": [{"HostIp": "0.0.0.0", "HostPort": "30080"}]}}}
    assert len(missing_port_mappings([node], plan)) == 1


def test_inspect_output_must_be_objects():
    with pytest.raises(KindConfigError, match="list of objects"):
        missing_port_mappings(["agw-obs-control-plane"], [])
