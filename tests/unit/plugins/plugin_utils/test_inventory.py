"""The inventory's rules (plugin_utils/inventory.py): what a run records, prunes, keeps and recovers.

The site plans are the roles' real parts (support.planner), so a switch of stack mode is checked on
what site.yml would deploy.
"""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils import inventory as inv

from support import planner

EXISTING = {"agw_obs_stack_mode": "existing", "existing_stack_prometheus_labels": {"release": "kps"},
            "existing_stack_tempo_datasource_url": "http://tempo.observability.svc.cluster.local:3200"}
STACK = ["prometheus", "tempo", "loki", "grafana", "existing_stack"]


def site_inventory(settings=None):
    return inv.desired(planner.site(planner.plan_site(settings)).plans)


def labels(inventory):
    return sorted(inv.label(kind, e) for kind in inv.KINDS for e in inventory[kind])


@pytest.fixture(scope="module")
def install():
    return site_inventory()


@pytest.fixture(scope="module")
def existing():
    return site_inventory(EXISTING)


def test_the_inventory_holds_every_release_object_and_namespace_with_its_role(install):
    assert {(e["role"], e["release"], e["chart"]) for e in install["releases"]} >= {
        ("prometheus", "prometheus", "prometheus"), ("tempo", "tempo", "tempo"),
        ("grafana", "grafana", "grafana")}
    assert {"role": "tempo", "apiVersion": "v1", "kind": "Service", "namespace": "monitoring",
            "name": "tempo-query-nodeport"} in install["objects"]
    assert {e["name"] for e in install["namespaces"]} == {"monitoring", "agentgateway-system"}
    assert not [e for e in install["objects"] if e["kind"] == "Namespace"], "namespaces are their own kind"


def test_switching_to_existing_mode_prunes_the_install_roles_and_nothing_else(install, existing):
    gone = inv.stale(install, existing, {e["role"] for kind in inv.KINDS for e in install[kind] + existing[kind]})
    assert sorted(e["release"] for e in gone["releases"]) == ["grafana", "prometheus", "tempo"]
    assert {e["role"] for e in gone["objects"]} <= {"prometheus", "tempo", "grafana"}
    assert "Service monitoring/tempo-query-nodeport" in labels(gone)
    assert "Secret monitoring/grafana-admin" in labels(gone)
    # the dashboards ConfigMaps are wanted in both modes (by another role): they stay
    assert "ConfigMap monitoring/grafana-dashboard-agentgateway-cost" not in labels(gone)
    assert gone["namespaces"] == []
    back = inv.stale(existing, install, set(STACK))
    assert {e["role"] for e in back["objects"]} == {"existing_stack"}
    assert "PodMonitor monitoring/agentgateway-proxy" in labels(back)


def test_only_the_roles_in_scope_are_pruned(install):
    nothing = inv.empty()
    assert inv.is_empty(inv.stale(install, nothing, {"traffic"}))
    only_tempo = inv.stale(install, nothing, {"tempo"})
    assert {e["role"] for kind in inv.KINDS for e in only_tempo[kind]} == {"tempo"}


def test_an_object_is_the_same_whatever_its_api_version():
    held = {"releases": [], "namespaces": [],
            "objects": [{"role": "r", "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
                         "namespace": "n", "name": "x"}]}
    wanted = {"releases": [], "namespaces": [],
              "objects": [{"role": "r", "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                           "namespace": "n", "name": "x"}]}
    assert inv.is_empty(inv.stale(held, wanted, {"r"}))
    other_group = dict(wanted["objects"][0], apiVersion="example.com/v1")
    assert labels(inv.stale(dict(held, objects=[other_group]), wanted, {"r"})) == ["HTTPRoute n/x"]


def test_union_and_minus_keep_the_wanted_entry_and_what_else_is_held(install, existing):
    both = inv.union(install, existing)
    assert labels(inv.minus(both, existing)) == labels(inv.stale(install, existing, {e["role"] for kind in inv.KINDS
                                                                                     for e in install[kind]}))
    assert sorted(labels(inv.union(existing, existing))) == labels(existing), "no entry twice"


def test_the_configmap_round_trips_and_is_the_same_for_the_same_content(install):
    cm = inv.configmap(install, "monitoring")
    assert cm["metadata"]["labels"][inv.MANAGED_BY_LABEL] == inv.MANAGED_BY_VALUE
    assert labels(inv.parse(cm)) == labels(install)
    shuffled = {kind: list(reversed(install[kind])) for kind in inv.KINDS}
    assert inv.configmap(shuffled, "monitoring") == cm, "a re-ordered plan writes no change"
    assert inv.is_empty(inv.parse(None))


@pytest.mark.parametrize("text, fragment", [
    ("releases: [", "is not YAML"),
    ("- a list", "is not an inventory"),
    ("releases: {a: 1}", "is not an inventory"),
    ("objects: [{kind: Service}]", "lacks a field"),
])
def test_a_damaged_inventory_is_refused_naming_the_configmap(text, fragment):
    with pytest.raises(inv.InventoryError) as caught:
        inv.parse({"metadata": {"namespace": "monitoring"}, "data": {inv.INVENTORY_KEY: text}})
    assert fragment in str(caught.value)
    assert "ConfigMap monitoring/agentgateway-observability-inventory" in str(caught.value)


def test_only_labelled_objects_and_releases_of_the_recorded_chart_are_ours():
    assert inv.ours({"metadata": {"labels": {inv.MANAGED_BY_LABEL: inv.MANAGED_BY_VALUE}}})
    assert not inv.ours({"metadata": {"labels": {inv.MANAGED_BY_LABEL: "Helm"}}})
    assert not inv.ours({"metadata": {}})
    entry = {"release": "tempo", "namespace": "monitoring", "chart": "tempo"}
    assert inv.release_is_ours(entry, "tempo-1.24.4")
    assert not inv.release_is_ours(entry, "loki-6.0.0")
    assert not inv.release_is_ours(entry, "")


def test_pending_releases_are_those_left_pending_install_upgrade_or_rollback():
    states = [{"namespace": "monitoring", "release": "tempo", "status": "pending-upgrade", "revision": 3},
              {"namespace": "monitoring", "release": "loki", "status": "pending-install", "revision": 1},
              {"namespace": "monitoring", "release": "grafana", "status": "deployed", "revision": 4},
              {"namespace": "monitoring", "release": "prometheus", "status": "failed", "revision": 2}]
    assert [(p["release"], p["status"]) for p in inv.pending(states)] == [
        ("tempo", "pending-upgrade"), ("loki", "pending-install")]
    assert inv.pending([]) == []


@pytest.mark.parametrize("history, expected", [
    ([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "deployed"},
      {"revision": 3, "status": "pending-upgrade"}], ("rollback", 2)),
    ([{"revision": 1, "status": "deployed"}, {"revision": 2, "status": "failed"},
      {"revision": 3, "status": "pending-rollback"}], ("rollback", 1)),
    ([{"revision": 1, "status": "pending-install"}], ("uninstall", None)),
    ([{"revision": 1, "status": "failed"}, {"revision": 2, "status": "pending-upgrade"}], ("uninstall", None)),
])
def test_a_pending_release_goes_back_to_its_last_good_revision_or_away(history, expected):
    assert inv.recovery(history) == expected


def test_turning_loki_or_the_gateway_install_off_prunes_their_releases(install):
    every_role = {e["role"] for kind in inv.KINDS for e in install[kind]} | {"loki", "agentgateway"}
    with_loki = site_inventory({"agw_obs_loki_enabled": True})
    loki_off = inv.stale(with_loki, install, every_role)
    assert [e["release"] for e in loki_off["releases"]] == ["loki"]
    assert {e["role"] for e in loki_off["objects"]} <= {"loki", "grafana"}
    gateway_off = inv.stale(install, site_inventory({"agw_obs_install_gateway": False}), every_role)
    assert sorted(e["release"] for e in gateway_off["releases"]) == ["agentgateway", "agentgateway-crds"]
    assert {e["role"] for kind in inv.KINDS for e in gateway_off[kind]} == {"agentgateway"}
