"""Unit tests of the site's Services as the verification and diagnose reach them (plugin_utils/site_services.py).

The Services are what the roles' plans name (``services`` in each ``_<role>_plan``), planned
in-process from the roles' real files (support.planner); the host ports come from the kind port
plan of the same parts (agw_obs's ``_agw_obs_port_plan``). ``resolve`` is the one place the
verification's URLs are computed: its checks and the closing screen both use it. The screen itself
is tests/unit/plugins/plugin_utils/test_verification_summary.py; the wiring through a play, with
changed NodePorts, tests/functional/test_site_summary.py.
"""

from __future__ import annotations

import functools
import json

import pytest

from ansible_collections.agentgateway.observability.plugins.module_utils.report import build
from ansible_collections.agentgateway.observability.plugins.plugin_utils import diagnose, verification
from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_services import (
    SERVICE_KEYS,
    ServicesError,
    release_service,
    resolve,
    service_url,
    skipped_checks,
)
from support import planner
from support.session import EXISTING

# NodePorts of every role moved off their defaults, and the gateway listener on another host port.
MOVED = {"prometheus_node_port": 31990, "grafana_node_port": 31080, "tempo_query_node_port": 31200,
         "gateway_observability_metrics_node_port": 31091, "gateway_observability_listener_node_port": 31088,
         "traffic_base_url": "http://localhost:8081"}
USERS_STACK = dict(EXISTING, existing_stack_prometheus_url="http://kps-prometheus.observability.svc:9090")


@functools.lru_cache(maxsize=None)
def _planned(settings_json):
    settings = json.loads(settings_json)
    parts = planner.plan_site(settings)
    mappings = planner.value("agw_obs", "_agw_obs_port_plan", dict(
        settings, _agw_obs_plans={role: planner.deployed(part) for role, part in parts.items()}))["mappings"]
    return planner.services(parts), mappings


def planned(settings=None):
    """(_agw_obs_services, the kind port plan's mappings) of the site planned for ``settings``."""
    return _planned(json.dumps(settings or {}, sort_keys=True))


def reach(settings=None, access="nodeport", **kwargs):
    services, mappings = planned(settings)
    return resolve(services, SERVICE_KEYS, access=access, port_mappings=mappings, **kwargs)


# ---- the Services of the plan ----------------------------------------------------------------------
def release(chart, name, values=None, namespace="monitoring"):
    return {"release": name, "namespace": namespace, "chart": {"name": chart}, "values": values or {}}


@pytest.mark.parametrize("chart, name, values, expected", [
    # the chart facts the verification used to hard-code, for the default release names
    ("prometheus", "prometheus", {"server": {"service": {"servicePort": 80}}}, ("prometheus-server", 80)),
    ("grafana", "grafana", {}, ("grafana", 80)),
    ("tempo", "tempo", {}, ("tempo", 3200)),
    ("loki", "loki", {}, ("loki", 3100)),
    # a release name that does not contain the chart's name gets it appended (the charts' fullname rule)
    ("prometheus", "metrics", {}, ("metrics-prometheus-server", 80)),
    ("grafana", "dashboards", {"service": {"port": 3000}}, ("dashboards-grafana", 3000)),
    ("tempo", "my-tempo-2", {}, ("my-tempo-2", 3200)),
    ("loki", "logs", {"loki": {"server": {"http_listen_port": 3101}}}, ("logs-loki", 3101)),
    # overrides through the role's extra values
    ("grafana", "grafana", {"fullnameOverride": "ui"}, ("ui", 80)),
    ("tempo", "traces", {"nameOverride": "traces"}, ("traces", 3200)),
    ("prometheus", "prometheus", {"fullnameOverride": "ignored", "server": {"fullnameOverride": "prom"}},
     ("prom", 80)),
    ("prometheus", "prometheus", {"server": {"name": "main"}}, ("prometheus-main", 80)),
    # trunc 63, then one trailing "-" removed
    ("grafana", "g" * 62 + "-x", {}, ("g" * 62, 80)),
])
def test_a_release_names_its_service_by_the_charts_own_rule(chart, name, values, expected):
    service = release_service(release(chart, name, values))
    assert (service["name"], service["port"]) == expected and service["namespace"] == "monitoring"


def test_a_chart_whose_naming_is_not_known_is_refused():
    with pytest.raises(ServicesError, match="chart 'kube-prometheus-stack'"):
        release_service(release("kube-prometheus-stack", "kps"))


@pytest.mark.parametrize("url, expected", [
    ("http://kps-prometheus.observability.svc:9090", {"namespace": "observability", "name": "kps-prometheus",
                                                      "port": 9090, "scheme": "http"}),
    ("https://grafana.ui.svc.cluster.local", {"namespace": "ui", "name": "grafana", "port": 443, "scheme": "https"}),
    ("http://loki-gateway.logging.svc/otlp", {"namespace": "logging", "name": "loki-gateway", "port": 80,
                                              "scheme": "http"}),
    ("http://tempo:3200", None), ("http://tempo.example.com:3200", None), ("tempo.observability.svc:3200", None),
    ("", None),
])
def test_an_in_cluster_service_url_names_its_service(url, expected):
    assert service_url(url) == expected


def test_every_role_names_the_services_it_runs_from_its_own_settings():
    services, _mappings = planned({"prometheus_release_name": "metrics", "mock_backend_name": "mock-two",
                                   "gateway_observability_metrics_service_name": "gw-metrics"})
    assert {k: (v["role"], v["namespace"], v["name"], v["port"]) for k, v in services.items() if "name" in v} == {
        "gateway": ("gateway_observability", "agentgateway-system", "agentgateway-proxy", 8080),
        "gateway_metrics": ("gateway_observability", "agentgateway-system", "gw-metrics", 15020),
        "mock_backend": ("mock_backend", "agentgateway-system", "mock-two", 8080),
        "prometheus": ("prometheus", "monitoring", "metrics-prometheus-server", 80),
        "tempo": ("tempo", "monitoring", "tempo", 3200),
        "grafana": ("grafana", "monitoring", "grafana", 80),
    }
    assert services["loki"] == {"role": "loki", "absent": "Loki is off (loki_enabled=false, from agw_obs_loki_enabled)"}


# ---- how they are reached --------------------------------------------------------------------------
def test_changed_node_ports_are_the_host_ports_the_verification_uses():
    reached = reach(MOVED, node_address="127.0.0.1")
    host_ports = {k: t["host_port"] for k, t in reached["targets"].items() if t["access"] == "nodeport"}
    assert host_ports == {"prometheus": 31990, "grafana": 31080, "tempo": 31200, "gateway_metrics": 31091,
                          "gateway": 8081}
    assert reached["node_ports"] == {"prometheus": 31990, "grafana": 31080, "tempo": 31200, "gateway_metrics": 31091,
                                     "gateway": 31088}
    assert all(t["node_address"] == "127.0.0.1" for t in reached["targets"].values() if t["access"] == "nodeport")
    # no NodePort: through the API server proxy, by the plan's names
    assert reached["targets"]["mock_backend"] == {"access": "proxy", "namespace": "agentgateway-system",
                                                  "name": "mock-openai", "port": "8080", "scheme": "http"}
    assert reached["skipped"] == {"loki": "Loki is off (loki_enabled=false, from agw_obs_loki_enabled)"}


def test_the_production_profile_has_no_node_port_so_every_service_goes_through_the_api_server():
    reached = reach({"agw_obs_profile": "production", "agw_obs_loki_enabled": True})
    assert {t["access"] for t in reached["targets"].values()} == {"proxy"}
    assert reached["targets"]["loki"]["name"] == "loki" and reached["skipped"] == {}


def test_proxy_access_follows_a_renamed_release():
    reached = reach({"prometheus_release_name": "metrics", "grafana_release_name": "dashboards"}, access="proxy")
    assert reached["targets"]["prometheus"]["name"] == "metrics-prometheus-server"
    assert reached["targets"]["grafana"]["name"] == "dashboards-grafana"
    assert reached["node_ports"] == {}


def test_existing_mode_reaches_the_users_stack_and_never_the_install_roles_node_ports():
    reached = reach(USERS_STACK)
    targets = reached["targets"]
    # the gateway's own NodePorts are the only ones in the port plan
    assert {k: t["host_port"] for k, t in targets.items() if t["access"] == "nodeport"} == {
        "gateway": 8080, "gateway_metrics": 30091}
    assert {30090, 30200, 30080} & {t.get("host_port") for t in targets.values()} == set()
    # the user's stack through the API server proxy, named by its in-cluster URLs
    assert targets["prometheus"] == {"access": "proxy", "namespace": "observability", "name": "kps-prometheus",
                                     "port": "9090", "scheme": "http"}
    assert (targets["tempo"]["namespace"], targets["tempo"]["name"], targets["tempo"]["port"]) == (
        "observability", "tempo", "3200")
    assert (targets["loki"]["namespace"], targets["loki"]["name"], targets["loki"]["port"]) == (
        "logging", "loki-gateway", "80")
    # no Grafana URL given: skipped, with the setting that would give it
    assert set(reached["skipped"]) == {"grafana"}
    assert "existing_stack_grafana_url is empty" in reached["skipped"]["grafana"]


def test_a_user_without_tempo_gets_the_tempo_hop_skipped_with_the_reason():
    settings = dict(USERS_STACK, existing_stack_tempo_datasource_url="", gateway_observability_tracing_enabled=False)
    for access in ("nodeport", "proxy"):
        reason = reach(settings, access=access)["skipped"]["tempo"]
        assert reason.startswith("agw_obs_stack_mode=existing runs no Tempo of its own")
        assert "existing_stack_tempo_datasource_url is empty" in reason
    # url access: the URL decides, and the reason says both
    urls = {"gateway": "http://localhost:8080", "prometheus": "http://localhost:9090"}
    reached = reach(settings, access="url", service_urls=urls)
    assert reached["targets"] == {"gateway": {"access": "url", "url": "http://localhost:8080"},
                                  "prometheus": {"access": "url", "url": "http://localhost:9090"}}
    assert "existing_stack_tempo_datasource_url is empty" in reached["skipped"]["tempo"]
    assert reached["skipped"]["tempo"].endswith("no URL given (agw_obs_service_urls.tempo is empty)")


def test_an_external_url_of_the_users_stack_is_no_service_and_says_so():
    reason = reach(dict(USERS_STACK, existing_stack_tempo_datasource_url="https://tempo.example.com"))["skipped"]["tempo"]
    assert "(https://tempo.example.com) names no in-cluster Service" in reason


def test_verification_services_override_the_plan_and_the_port_plan():
    reached = reach({}, overrides={"grafana": {"host_port": 3000}, "prometheus": {"host_port": 0},
                                   "tempo": {"name": "tempo-query", "port": 3100}})
    assert reached["targets"]["grafana"]["host_port"] == 3000 and "grafana" not in reached["node_ports"]
    assert reached["targets"]["prometheus"]["access"] == "proxy"
    # tempo keeps its host port from the plan, and takes the name for the proxy from the override
    assert reached["targets"]["tempo"]["host_port"] == 30200
    assert resolve(planned()[0], ["tempo"], access="proxy", overrides={"tempo": {"name": "tempo-query"}})[
        "targets"]["tempo"]["name"] == "tempo-query"
    # a name given makes a hop of the user's own that the plan does not run
    assert reach(USERS_STACK, access="proxy", overrides={"grafana": {"namespace": "ui", "name": "grafana", "port": 80}})[
        "targets"]["grafana"]["name"] == "grafana"


def test_hops_the_verification_turns_off_and_services_no_role_planned_are_skipped_with_the_reason():
    reached = resolve({}, ["loki", "prometheus"], off={"loki": "Loki is off (verification_loki_enabled=false)"})
    assert reached["skipped"]["loki"] == "Loki is off (verification_loki_enabled=false)"
    assert "its role was not planned" in reached["skipped"]["prometheus"]
    with pytest.raises(ServicesError, match="agw_obs_access"):
        resolve({}, ["loki"], access="port-forward")


def test_skipped_hops_are_skipped_checks_with_the_reason_and_do_not_fail_the_report():
    checks = skipped_checks({"tempo": "no Tempo", "loki": "Loki is off"})
    assert [(c["id"], c["status"], c["saw"]) for c in checks] == [
        ("tempo.skipped", "skipped", "skipped: no Tempo"), ("loki.skipped", "skipped", "skipped: Loki is off")]
    assert "The site does not run tempo: no Tempo." == checks[0]["explanation"]
    report = build([{"id": "prometheus.ready", "status": "passed"}] + checks)
    assert report["passed"] and report["summary"] == {"total": 3, "passed": 1, "failed": 0, "skipped": 2}


def test_without_the_gateway_nothing_is_sent_and_without_the_backend_its_journal_is_not_read():
    sent = [{"model": "gpt-4", "n": 0, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}]
    common = dict(path="/v1/chat/completions", api_key="k", backend_api_key="b")
    no_backend = verification.plan(sent, {"gateway": {"url": "http://gw"}}, **common)
    assert len(no_backend["requests"]) == 1 and no_backend["backend"] == [] and no_backend["traces"]
    no_gateway = verification.plan(sent, {"mock_backend": {"url": "http://wm"}}, **common)
    assert no_gateway == {"requests": [], "retry_requests": [], "mcp": None, "backend": [], "queries": [],
                          "demo_specs": [], "demo_baseline": [], "traces": [], "log_queries": []}


# ---- what diagnose reads, from the same plan -------------------------------------------------------
def diagnose_reads(settings, **kwargs):
    parts = planner.plan_site(settings)
    return diagnose.plan_reads({role: planner.deployed(part) for role, part in parts.items()},
                               planner.services(parts), **kwargs)


def test_diagnose_reads_the_plans_releases_namespaces_and_services_in_install_mode():
    reads = diagnose_reads({"prometheus_release_name": "metrics", "agw_obs_loki_enabled": True})
    assert {(r["namespace"], r["name"]) for r in reads["releases"]} == {
        ("monitoring", "metrics"), ("monitoring", "tempo"), ("monitoring", "loki"), ("monitoring", "grafana"),
        ("agentgateway-system", "agentgateway-crds"), ("agentgateway-system", "agentgateway")}
    assert reads["namespaces"] == ["monitoring", "agentgateway-system"]
    assert {s["key"]: s["name"] for s in reads["services"]} == {
        "gateway": "agentgateway-proxy", "gateway_metrics": "agentgateway-proxy-metrics", "mock_backend": "mock-openai",
        "prometheus": "metrics-prometheus-server", "tempo": "tempo", "loki": "loki", "grafana": "grafana"}
    assert reads["absent"] == {}


def test_diagnose_reads_the_users_stack_in_existing_mode_not_the_install_modes_names():
    reads = diagnose_reads(USERS_STACK)
    # no release of the stack: ours are not installed in this mode
    assert {r["name"] for r in reads["releases"]} == {"agentgateway-crds", "agentgateway"}
    assert {s["key"]: (s["role"], s["namespace"], s["name"]) for s in reads["services"]
            if s["role"] == "existing_stack"} == {
        "prometheus": ("existing_stack", "observability", "kps-prometheus"),
        "tempo": ("existing_stack", "observability", "tempo"),
        "loki": ("existing_stack", "logging", "loki-gateway")}
    assert "prometheus-server" not in json.dumps(reads)
    # the user's namespaces too, after the plan's own
    assert reads["namespaces"][:2] == ["agentgateway-system", "monitoring"]
    assert sorted(reads["namespaces"][2:]) == ["logging", "observability"]
    assert "existing_stack_grafana_url is empty" in reads["absent"]["grafana"]
    # given lists are taken as they are
    given = diagnose_reads(USERS_STACK, namespaces=["a"], releases=[{"name": "r", "namespace": "a"}])
    assert given["namespaces"] == ["a"] and given["releases"] == [{"name": "r", "namespace": "a"}]


def test_the_services_section_says_what_each_read_found_and_why_a_hop_is_not_run():
    planned = [{"key": key, "role": "existing_stack", "namespace": ns, "name": name, "port": 9090}
               for key, ns, name in (("prometheus", "observability", "kps-prometheus"), ("tempo", "observability", "tempo"),
                                     ("loki", "logging", "loki"), ("mock_backend", "gw", "mock-openai"))]
    ours = {"metadata": {"name": "kps-prometheus"}, "spec": {"type": "ClusterIP", "ports": [{"port": 9090}], "x": 1}}
    other = {"metadata": {"name": "kps-alertmanager"}, "spec": {}}
    services = [{"item": {"key": "observability"}, "resources": [other, ours]},
                {"item": {"key": "logging"}, "failed": True, "msg": "Forbidden"}]
    slice_of = {"metadata": {"labels": {"kubernetes.io/service-name": "kps-prometheus"}},
                "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True},
                               "targetRef": {"name": "kps-prometheus-0"}}]}
    endpoints = [{"item": {"key": "observability"}, "resources": [slice_of]}]
    section = diagnose.services_section(planned, services, endpoints, {"grafana": "no Grafana URL"})
    assert section[0] == {"service": "prometheus", "role": "existing_stack", "read": "observability/kps-prometheus",
                          "port": 9090, "spec": {"type": "ClusterIP", "ports": [{"port": 9090}]},
                          "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True},
                                         "pod": "kps-prometheus-0"}]}
    assert section[1]["error"] == "no Service tempo in namespace observability" and section[1]["endpoints"] == []
    assert section[2]["error"] == "Forbidden"
    assert section[3]["error"] == "not read"
    assert section[4] == {"service": "grafana", "skipped": "no Grafana URL"}
    assert diagnose_reads(USERS_STACK)["service_namespaces"]["observability"] == ["kps-prometheus", "tempo"]
