"""The pure half of the deploy path: validation, render layout, and kubernetes.core arguments."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.agentgateway.observability.plugins.plugin_utils import desired_state as ds
from support import samples

RELEASE = samples.release()
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana-admin", "namespace": "monitoring"}}
CLASS = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "agentgateway"}}


def with_chart(**chart):
    rel = dict(RELEASE)
    rel["chart"] = chart
    return rel


@pytest.mark.parametrize(
    "release, message",
    [
        (dict(RELEASE, release="Prometheus"), "DNS-1123 label"),
        (dict(RELEASE, release="p" * 54), "at most 53"),
        (dict(RELEASE, namespace=""), "'namespace' must be a DNS-1123 label"),
        (with_chart(name="prometheus", version="29.27.0"), "exactly one of 'repo'"),
        (with_chart(repo="https://x", oci="oci://y", name="p", version="1.0.0"), "exactly one of 'repo'"),
        (with_chart(repo="prometheus-community", name="p", version="1.0.0"), "http(s) repository URL"),
        (with_chart(oci="cr.agentgateway.dev/charts", name="p", version="1.0.0"), "must start with oci://"),
        (with_chart(repo="https://x", name="p", version="latest"), "pinned version"),
        (with_chart(repo="https://x", name="p", version=">=29.0.0"), "pinned version"),
        (with_chart(repo="https://x", name="p", version=""), "pinned version"),
        (with_chart(repo="https://x", version="1.0.0"), "chart.name is required"),
        (dict(RELEASE, value={}), "unknown keys value"),
        (dict(RELEASE, values=[]), "'values' must be a mapping"),
    ],
)
def test_bad_releases_are_refused_with_the_reason(release, message):
    with pytest.raises(ds.DesiredStateError) as err:
        ds.validate_release(release)
    assert message in str(err.value)


def test_oci_chart_with_v_prefixed_version_is_accepted():
    rel = ds.validate_release(with_chart(oci="oci://cr.agentgateway.dev/charts", name="agentgateway", version="v1.4.1"))
    assert rel["chart"]["version"] == "v1.4.1"


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"kind": "Secret", "metadata": {"name": "a", "namespace": "b"}}, "apiVersion is required"),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}, "metadata.namespace is required"),
        (dict(CLASS, metadata={"name": "agentgateway", "namespace": "x"}), "cluster-scoped"),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name", "namespace": "b"}}, "DNS-1123"),
    ],
)
def test_bad_objects_are_refused(obj, message):
    with pytest.raises(ds.DesiredStateError) as err:
        ds.validate_object(obj)
    assert message in str(err.value)


def test_paths_follow_the_render_layout():
    assert ds.release_path(RELEASE) == "helm/monitoring/prometheus.yaml"
    assert ds.object_path(SECRET) == "manifests/monitoring/Secret-grafana-admin.yaml"
    assert ds.object_path(CLASS) == "manifests/_cluster/GatewayClass-agentgateway.yaml"


def test_plan_documents_and_index_entries():
    plan = ds.Plan("grafana", releases=[RELEASE], before_releases=[SECRET], after_releases=[CLASS],
                   remote_manifests=[{"name": "gateway-api", "url": "https://example.test/std.yaml",
                                      "version": "v1.6.1"}])
    docs = plan.documents()
    assert sorted(docs) == [
        "helm/monitoring/prometheus.yaml",
        "manifests/_cluster/GatewayClass-agentgateway.yaml",
        "manifests/monitoring/Secret-grafana-admin.yaml",
    ]
    assert yaml.safe_load(docs["helm/monitoring/prometheus.yaml"]) == RELEASE
    entries = plan.index_entries()
    assert [e["type"] for e in entries] == ["helm_release", "manifest", "manifest", "remote_manifest"]
    assert entries[1]["phase"] == "before_releases" and entries[2]["phase"] == "after_releases"
    assert entries[3] == {"role": "grafana", "type": "remote_manifest", "name": "gateway-api",
                          "url": "https://example.test/std.yaml", "version": "v1.6.1"}


def test_duplicate_paths_in_one_role_are_refused():
    with pytest.raises(ds.DesiredStateError, match="two entries render to"):
        ds.Plan("grafana", after_releases=[SECRET, SECRET])


def test_dump_is_deterministic_and_keeps_multiline_strings_readable():
    data = {"b": 1, "a": {"expr": "sum(x)\n/\nsum(y)", "labels": ["z", "y"]}}
    text = ds.dump_yaml(data, header="hello")
    assert text == ds.dump_yaml({"a": {"labels": ["z", "y"], "expr": "sum(x)\n/\nsum(y)"}, "b": 1}, header="hello")
    assert text.startswith("# hello\n---\n")
    assert "expr: |-\n    sum(x)\n    /\n    sum(y)\n" in text


def test_plain_converts_subclasses_and_refuses_unknown_types():
    class Tagged(str):
        pass

    out = ds.plain({Tagged("k"): [Tagged("v"), (1, 2.5, True, None)]})
    assert out == {"k": ["v", [1, 2.5, True, None]]}
    assert list(out)[0].__class__ is str and out["k"][0].__class__ is str
    with pytest.raises(ds.DesiredStateError):
        ds.plain({"x": object()})


def test_merge_index_replaces_only_this_roles_entries():
    existing = {"entries": [
        {"role": "tempo", "type": "helm_release", "path": "helm/monitoring/tempo.yaml"},
        {"role": "prometheus", "type": "helm_release", "path": "helm/monitoring/old.yaml"},
    ]}
    plan = ds.Plan("prometheus", releases=[RELEASE])
    index, stale = ds.merge_index(existing, plan)
    assert [e["path"] for e in index["entries"]] == ["helm/monitoring/prometheus.yaml", "helm/monitoring/tempo.yaml"]
    assert stale == ["helm/monitoring/old.yaml"]
    index, stale = ds.merge_index(index, plan, present=False)
    assert [e["role"] for e in index["entries"]] == ["tempo"]
    assert stale == ["helm/monitoring/prometheus.yaml"]


def test_merge_index_refuses_a_path_owned_by_another_role():
    existing = {"entries": [{"role": "tempo", "path": "helm/monitoring/prometheus.yaml"}]}
    with pytest.raises(ds.DesiredStateError, match="already rendered by role tempo"):
        ds.merge_index(existing, ds.Plan("prometheus", releases=[RELEASE]))


def test_helm_arguments_for_a_repository_chart():
    args = ds.helm_module_args(ds.validate_release(RELEASE), kubeconfig="/k", context="kind-agw")
    assert args == {
        "name": "prometheus",
        "release_namespace": "monitoring",
        "release_state": "present",
        "chart_ref": "prometheus",
        "chart_repo_url": "https://prometheus-community.github.io/helm-charts",
        "chart_version": "29.27.0",
        "release_values": {"server": {"retention": "2d"}},
        "create_namespace": False,
        "atomic": True,
        "wait": True,
        "wait_timeout": "10m",
        "kubeconfig": "/k",
        "context": "kind-agw",
    }


def test_a_release_is_atomic_only_when_waiting():
    """Helm 3's --atomic implies --wait: without waiting (no nodes, or the user's choice) it must be off."""
    rel = ds.validate_release(RELEASE)
    assert ds.helm_module_args(rel, wait=False, atomic=True)["atomic"] is False
    assert ds.helm_module_args(rel, wait=True, atomic=False)["atomic"] is False
    assert ds.helm_module_args(rel, binary_path="/opt/helm3")["binary_path"] == "/opt/helm3"


def test_a_chart_mirror_replaces_every_public_home_and_the_index_says_which():
    oci = with_chart(oci="oci://cr.agentgateway.dev/charts", name="agentgateway", version="v1.4.1")
    plan = ds.Plan("agentgateway", releases=[RELEASE, dict(oci, release="agw")],
                   chart_mirror="http://charts.internal:8080/mirror/")
    assert [r["chart"] for r in plan.releases] == [
        {"repo": "http://charts.internal:8080/mirror", "name": "prometheus", "version": "29.27.0"},
        {"repo": "http://charts.internal:8080/mirror", "name": "agentgateway", "version": "v1.4.1"},
    ]
    entries = {e["release"]: e for e in plan.index_entries()}
    assert entries["prometheus"]["mirror_of"] == {"repo": "https://prometheus-community.github.io/helm-charts"}
    assert entries["agw"]["mirror_of"] == {"oci": "oci://cr.agentgateway.dev/charts"}
    as_oci = ds.Plan("x", releases=[RELEASE], chart_mirror="oci://registry.internal/charts")
    assert as_oci.releases[0]["chart"] == {"oci": "oci://registry.internal/charts", "name": "prometheus",
                                           "version": "29.27.0"}
    assert "mirror_of" not in ds.Plan("x", releases=[RELEASE]).index_entries()[0]


@pytest.mark.parametrize("mirror", ["charts.internal", "ftp://x", "https://a b"])
def test_a_chart_mirror_must_be_a_repository_url_or_an_oci_prefix(mirror):
    with pytest.raises(ds.DesiredStateError, match="chart mirror"):
        ds.Plan("x", releases=[RELEASE], chart_mirror=mirror)


def test_namespaces_of_a_plan_with_the_labels_of_its_namespace_objects():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gw", "labels": {"team": "a"}}}
    plan = ds.Plan("x", releases=[RELEASE], before_releases=[ns, SECRET])
    assert plan.namespaces() == {"gw": {"team": "a"}, "monitoring": {}}


def test_helm_arguments_for_an_oci_chart_and_for_removal():
    rel = ds.validate_release(with_chart(oci="oci://cr.agentgateway.dev/charts/", name="agentgateway-crds",
                                         version="v1.4.1"))
    args = ds.helm_module_args(rel)
    assert args["chart_ref"] == "oci://cr.agentgateway.dev/charts/agentgateway-crds"
    assert "chart_repo_url" not in args and "kubeconfig" not in args
    gone = ds.helm_module_args(rel, state="absent")
    assert gone == {"name": "prometheus", "release_namespace": "monitoring", "release_state": "absent", "wait": True}


def test_k8s_arguments_use_server_side_apply_and_seconds():
    args = ds.k8s_module_args(ds.validate_object(SECRET), wait_timeout="2m")
    assert args["apply"] is True
    assert args["server_side_apply"] == {"field_manager": "agentgateway-observability"}
    assert args["wait_timeout"] == 120
    assert args["definition"] == SECRET
    gone = ds.k8s_module_args(ds.validate_object(CLASS), state="absent", wait_timeout="1h")
    assert gone == {"state": "absent", "wait": True, "wait_timeout": 3600,
                    "api_version": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "name": "agentgateway"}
    with pytest.raises(ds.DesiredStateError, match="wait_timeout"):
        ds.k8s_module_args(SECRET, wait_timeout="10 minutes")
