"""Requests and limits of every container the rendered site would run, per profile, added up.

Which containers each chart runs for the rendered values is modelled from the chart templates
at the pinned versions (tests/support/containers.py); Deployments rendered as manifests and the
gateway proxy (from its AgentgatewayParameters) count as written. Each profile is rendered with
Loki on, the largest stack the collection installs: the kind profile is the session's shared
site.yml render with Loki on; the production profile with Loki on is planned in-process
(support.planner, byte for byte what site.yml renders) and written out the same way, index.yaml
included. A container is covered when it has CPU and memory requests and a memory limit (no CPU
limits on purpose, except where a role sets one: CPU is throttled, memory is what protects the node).
"""

from __future__ import annotations

import copy
import pathlib

import pytest

from ansible_collections.agentgateway.observability.plugins.action.deploy import INDEX_HEADER
from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import dump_yaml, merge_index

from support import planner
from support.containers import NotModelled, memory_bytes, missing_resources, requested, site_containers
from support.fixtures import snapshot
from support.session import VARIANTS

GIB = 2 ** 30
PROFILES = ["kind", "production"]


def write_planned_render(directory, settings):
    """Write what site.yml would render for ``settings``, planned in-process, index.yaml included."""
    settings = dict(settings, agw_obs_render_dir=str(directory))
    site = planner.site_of(settings)
    for path, text in site.documents().items():
        target = pathlib.Path(directory, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    index, _stale = merge_index({}, site.plans)
    pathlib.Path(directory, "index.yaml").write_text(dump_yaml(index, header=INDEX_HEADER), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def renders(site_render, tmp_path_factory):
    production = write_planned_render(tmp_path_factory.mktemp("resources-production"),
                                      {"agw_obs_profile": "production", "agw_obs_loki_enabled": True})
    return {"kind": site_render("loki"), "production": production}


def test_the_planned_render_is_what_site_yml_writes(site_render, tmp_path):
    """Guard for the production count: written this way, the kind profile with Loki on is the
    session's site.yml render of it, file for file and byte for byte, index.yaml included."""
    written = write_planned_render(tmp_path, VARIANTS["loki"])
    assert snapshot(written) == snapshot(site_render("loki"))


def table(containers):
    return "\n".join("%-40s %-36s x%d %s" % (c["owner"], c["name"] + (" (init)" if c["init"] else ""), c["replicas"],
                                             c["resources"]) for c in containers)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_has_requests_and_limits(renders, profile):
    containers = site_containers(renders[profile])
    names = {c["name"] for c in containers}
    # the three the chart defaults left bare, and the rest of the stack
    assert {"prometheus-server-configmap-reload", "kube-state-metrics", "grafana-sc-dashboards"} <= names
    assert {"prometheus-server", "grafana", "tempo", "loki", "agentgateway-controller", "agentgateway",
            "wiremock"} <= names
    missing = {"%s: %s" % (c["owner"], c["name"]): missing_resources(c) for c in containers if missing_resources(c)}
    assert missing == {}, table(containers)


def test_production_also_covers_the_containers_only_it_runs(renders):
    names = {c["name"] for c in site_containers(renders["production"])}
    # Loki's caches and their exporters; Grafana's init-chown-data (root, CHOWN) is off under restricted
    assert {"chunksCache-memcached", "chunksCache-exporter", "resultsCache-memcached", "resultsCache-exporter"} <= names
    assert "init-chown-data" not in names


def test_the_kind_profile_requests_at_most_one_cpu_and_two_gib(renders):
    containers = site_containers(renders["kind"])
    cpu, memory = requested(containers)
    assert cpu <= 1.0, "kind requests %.2f CPU:\n%s" % (cpu, table(containers))
    assert memory <= 2 * GIB, "kind requests %.0f MiB:\n%s" % (memory / 2 ** 20, table(containers))


def test_production_requests_more_than_kind(renders):
    kind, production = (requested(site_containers(renders[p])) for p in PROFILES)
    assert production[0] > kind[0] and production[1] > kind[1]


# ---- guards for the guard -----------------------------------------------------------------------

def test_a_container_without_requests_and_limits_is_reported():
    values = {"configmapReload": {"prometheus": {"resources": {}}}, "server": {"resources": {"requests": {"cpu": "1"}}},
              "kube-state-metrics": {"enabled": False}, "alertmanager": {"enabled": False},
              "prometheus-node-exporter": {"enabled": False}, "prometheus-pushgateway": {"enabled": False}}
    from support.containers import CHARTS  # pylint: disable=import-outside-toplevel
    containers = CHARTS["prometheus"]("release prometheus", values)
    assert [missing_resources(c) for c in containers] == [
        ["requests.cpu", "requests.memory", "limits.memory"],
        ["requests.memory", "limits.memory"],
    ]


def test_a_container_the_model_does_not_know_fails_the_count():
    from support.containers import CHARTS  # pylint: disable=import-outside-toplevel
    with pytest.raises(NotModelled, match="alertmanager"):
        CHARTS["prometheus"]("release prometheus", {"alertmanager": {}})
    loki = copy.deepcopy({"deploymentMode": "Monolithic", "gateway": {"enabled": True}})
    with pytest.raises(NotModelled, match="gateway"):
        CHARTS["loki"]("release loki", loki)


def test_lokis_memcached_is_sized_like_the_chart_does():
    from support.containers import CHARTS  # pylint: disable=import-outside-toplevel
    values = {"deploymentMode": "Monolithic", "gateway": {"enabled": False}, "lokiCanary": {"enabled": False},
              "sidecar": {"rules": {"enabled": False}}, "singleBinary": {"replicas": 1},
              "chunksCache": {"allocatedMemory": 1024}, "resultsCache": {"enabled": False}}
    memcached = [c for c in CHARTS["loki"]("release loki", values) if c["name"] == "chunksCache-memcached"][0]
    # round(1024 * 1.2) = 1229 Mi, requested and as the limit; 500m CPU (the chart's allocatedCPU)
    assert memcached["resources"] == {"requests": {"cpu": "500m", "memory": "1229Mi"}, "limits": {"memory": "1229Mi"}}
    assert memory_bytes("1229Mi") == 1229 * 2 ** 20
