"""The deploy action: the render outlet on disk, and what the apply outlet hands to kubernetes.core.

The apply outlet cannot reach a cluster here. As in kubernetes.core's own unit tests, the
boundary is tested instead: the exact module calls the action makes (module, arguments, order),
and — in test_helm_boundary.py — what the real kubernetes.core.helm module turns them into.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest
import yaml
from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task

from ansible_collections.agentgateway.observability.plugins.action.deploy import ActionModule
from support import samples

RELEASE = samples.release()
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin", "namespace": "monitoring"},
          "stringData": {"password": "s3cret"}}
ROUTE = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "openai", "namespace": "agentgateway-system"}, "spec": {}}


def make_action(args, check_mode=False, diff=False):
    task = mock.MagicMock(Task)
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    task.async_val = 0
    task.action = "agentgateway.observability.deploy"
    connection = mock.MagicMock()
    play_context = mock.MagicMock()
    play_context.check_mode = check_mode
    return ActionModule(task, connection, play_context, loader=None, templar=None, shared_loader_obj=None)


def run(args, **kwargs):
    return make_action(args, **kwargs).run(task_vars={})


# ---- render outlet ----------------------------------------------------------------------------

def test_render_writes_files_then_reports_no_change(tmp_path):
    args = {"role": "prometheus", "render_dir": str(tmp_path), "releases": [RELEASE], "objects": [ROUTE]}
    first = run(args)
    assert first["changed"] is True
    assert first["files"] == ["helm/monitoring/prometheus.yaml",
                              "manifests/agentgateway-system/HTTPRoute-openai.yaml"]
    assert sorted(first["changed_files"]) == sorted(first["files"] + ["index.yaml"])
    stat = os.stat(tmp_path / "helm/monitoring/prometheus.yaml").st_mtime_ns
    second = run(args)
    assert second["changed"] is False and second["changed_files"] == []
    assert os.stat(tmp_path / "helm/monitoring/prometheus.yaml").st_mtime_ns == stat, "unchanged files are not rewritten"


def test_render_check_mode_writes_nothing_and_diff_is_returned(tmp_path):
    args = {"role": "prometheus", "render_dir": str(tmp_path), "releases": [RELEASE]}
    result = run(args, check_mode=True, diff=True)
    assert result["changed"] is True
    assert list(tmp_path.iterdir()) == []
    headers = sorted(d["after_header"] for d in result["diff"])
    assert headers == ["helm/monitoring/prometheus.yaml", "index.yaml"]
    assert all(d["before"] == "" for d in result["diff"])


def test_render_removes_what_the_role_no_longer_wants_and_keeps_other_roles(tmp_path):
    run({"role": "mock_backend", "render_dir": str(tmp_path), "objects": [ROUTE]})
    run({"role": "grafana", "render_dir": str(tmp_path), "objects_first": [SECRET], "releases": [RELEASE]})
    result = run({"role": "grafana", "render_dir": str(tmp_path), "releases": [RELEASE]})
    assert result["removed_files"] == ["manifests/monitoring/Secret-admin.yaml"]
    assert not (tmp_path / "manifests/monitoring").exists(), "empty folders are pruned"
    index = yaml.safe_load((tmp_path / "index.yaml").read_text())
    assert sorted(e["role"] for e in index["entries"]) == ["grafana", "mock_backend"]


def test_render_refuses_a_relative_dir_and_a_foreign_index(tmp_path):
    with pytest.raises(AnsibleActionFail, match="absolute path"):
        run({"role": "prometheus", "render_dir": "relative/dir", "releases": [RELEASE]})
    (tmp_path / "index.yaml").write_text("- just\n- a list\n")
    with pytest.raises(AnsibleActionFail, match="not a render index"):
        run({"role": "prometheus", "render_dir": str(tmp_path), "releases": [RELEASE]})


def test_invalid_entries_fail_before_any_file_is_written(tmp_path):
    bad = dict(RELEASE, chart=dict(RELEASE["chart"], version="latest"))
    with pytest.raises(AnsibleActionFail, match="pinned version"):
        run({"role": "prometheus", "render_dir": str(tmp_path), "objects": [ROUTE], "releases": [bad]})
    assert list(tmp_path.iterdir()) == []


def owned(obj, role):
    """``obj`` as the collection applies it: annotated with the role that owns it."""
    return dict(obj, metadata=dict(obj["metadata"], annotations={"agentgateway.observability/role": role}))


# ---- apply outlet -----------------------------------------------------------------------------

def apply(args, results=None, **kwargs):
    """Run the action in apply mode; ``results`` maps a call's number (from 1) to what it returns.

    The cluster check is off unless ``args`` asks for it (tested on its own below).
    """
    action = make_action(dict({"cluster_check": False}, **args), **kwargs)
    calls = []

    def fake_execute_module(module_name=None, module_args=None, task_vars=None, **_kw):
        calls.append((module_name, module_args))
        return (results or {}).get(len(calls), {"changed": True})

    with mock.patch.object(action, "_execute_module", side_effect=fake_execute_module):
        result = action.run(task_vars={})
    return result, calls


def test_apply_hands_each_entry_to_kubernetes_core_in_order():
    result, calls = apply({"role": "grafana", "objects_first": [SECRET], "releases": [RELEASE], "objects": [ROUTE],
                           "kubeconfig": "/home/u/.kube/kind", "context": "kind-agw", "wait_timeout": "5m"})
    assert [c[0] for c in calls] == ["agentgateway.observability.managed_namespace", "kubernetes.core.k8s", "kubernetes.core.helm",
                                     "kubernetes.core.k8s"]
    ns_args, secret_args, helm_args, route_args = (c[1] for c in calls)
    # The namespaces come first, from the collection's own module (creates missing ones, labelled).
    assert ns_args["state"] == "present" and ns_args["names"] == ["monitoring", "agentgateway-system"]
    assert ns_args["kubeconfig"] == "/home/u/.kube/kind" and ns_args["context"] == "kind-agw"
    assert secret_args["definition"] == [owned(SECRET, "grafana")], "every object names its role"
    assert secret_args["apply"] is True and secret_args["server_side_apply"]["field_manager"]
    assert secret_args["kubeconfig"] == "/home/u/.kube/kind" and secret_args["context"] == "kind-agw"
    assert secret_args["wait_timeout"] == 300
    assert helm_args["name"] == "prometheus" and helm_args["release_namespace"] == "monitoring"
    assert helm_args["chart_ref"] == "prometheus"
    assert helm_args["chart_repo_url"] == "https://prometheus-community.github.io/helm-charts"
    assert helm_args["chart_version"] == "29.27.0"
    assert helm_args["release_values"] == {"server": {"retention": "2d"}}
    assert helm_args["wait"] is True and helm_args["atomic"] is True and helm_args["wait_timeout"] == "5m"
    assert helm_args["create_namespace"] is False, "namespaces are created by managed_namespace, never by helm"
    assert route_args["definition"] == [owned(ROUTE, "grafana")]
    assert result["changed"] is True and result["mode"] == "apply"
    assert [a["module"] for a in result["applied"]] == [c[0] for c in calls]


def test_apply_absent_removes_in_reverse_order():
    _result, calls = apply({"role": "grafana", "state": "absent", "objects_first": [SECRET], "releases": [RELEASE],
                            "objects": [ROUTE]})
    assert [(c[0], c[1]["definition"][0]["kind"] if "definition" in c[1] else c[1].get("name")) for c in calls] == [
        ("kubernetes.core.k8s", "HTTPRoute"),
        ("kubernetes.core.helm", "prometheus"),
        ("kubernetes.core.k8s", "Secret"),
        ("agentgateway.observability.managed_namespace", None),
    ]
    assert calls[1][1]["release_state"] == "absent"
    assert all(c[1]["state"] == "absent" for c in (calls[0], calls[2], calls[3]))
    assert calls[3][1]["names"] == ["monitoring", "agentgateway-system"], "namespaces are looked at last"


def test_apply_stops_at_the_first_failure_and_names_it():
    result, calls = apply({"role": "grafana", "objects_first": [SECRET], "releases": [RELEASE], "objects": [ROUTE]},
                          results={3: {"failed": True, "msg": "UPGRADE FAILED: timed out"}})
    assert len(calls) == 3, "nothing after the failing release is applied"
    assert result["failed"] is True
    assert "kubernetes.core.helm failed for release monitoring/prometheus (role grafana)" in result["msg"]
    assert "timed out" in result["msg"]


def test_apply_without_changes_reports_no_change():
    result, _calls = apply({"role": "prometheus", "releases": [RELEASE]},
                           results={1: {"changed": False}, 2: {"changed": False}})
    assert result["changed"] is False


def test_apply_fetches_remote_manifests_first(monkeypatch):
    crd = ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
           "metadata: {name: gateways.gateway.networking.k8s.io}\n---\n")
    body = mock.MagicMock()
    body.read.return_value = crd.encode()
    opened = []
    monkeypatch.setattr("ansible_collections.agentgateway.observability.plugins.action.deploy.open_url",
                        lambda url, **kw: opened.append(url) or body)
    _result, calls = apply({"role": "agentgateway", "releases": [RELEASE],
                            "remote_manifests": [{"name": "gateway-api", "url": "https://example.test/std.yaml"}]})
    assert opened == ["https://example.test/std.yaml"]
    assert [c[0] for c in calls] == ["agentgateway.observability.managed_namespace", "kubernetes.core.k8s", "kubernetes.core.helm"]
    crd_args = calls[1][1]
    assert [d["kind"] for d in crd_args["definition"]] == ["CustomResourceDefinition"]
    # Objects of a CRD's kinds follow it, so it is waited for until Established even when waiting is off.
    assert crd_args["wait"] is True and crd_args["wait_condition"] == {"type": "Established", "status": "True"}


def test_consecutive_objects_share_one_k8s_call_and_each_is_reported():
    other = dict(ROUTE, metadata=dict(ROUTE["metadata"], name="second"))
    result, calls = apply({"role": "mock_backend", "objects": [ROUTE, other]},
                          results={2: {"changed": True, "result": {"results": [{"changed": False},
                                                                               {"changed": True}]}}})
    assert [c[0] for c in calls] == ["agentgateway.observability.managed_namespace", "kubernetes.core.k8s"]
    assert [d["metadata"]["name"] for d in calls[1][1]["definition"]] == [ROUTE["metadata"]["name"], "second"]
    assert [(a["target"].split("/")[-1], a["changed"]) for a in result["applied"][1:]] == [
        (ROUTE["metadata"]["name"], False), ("second", True)]


def test_removal_by_definition_names_each_object_only():
    _result, calls = apply({"role": "mock_backend", "state": "absent", "objects": [ROUTE, SECRET]})
    k8s = calls[0][1]
    assert k8s["state"] == "absent"
    assert [sorted(d) for d in k8s["definition"]] == [["apiVersion", "kind", "metadata"]] * 2
    assert all("spec" not in d and "stringData" not in d for d in k8s["definition"])


def test_a_write_of_the_api_servers_bookkeeping_only_is_not_a_change():
    """Seen on kube-apiserver 1.36: the first re-apply after a status controller wrote an object
    re-sorts managedFields and bumps resourceVersion; nothing the collection asked for changed."""
    bookkeeping = {"before": {"metadata": {"managedFields": [{"manager": "a"}], "resourceVersion": "286"}},
                   "after": {"metadata": {"managedFields": [{"manager": "b"}], "resourceVersion": "320"}}}
    real = {"before": {"metadata": {"resourceVersion": "1"}, "spec": {"a": 1}},
            "after": {"metadata": {"resourceVersion": "2"}, "spec": {"a": 2}}}
    label_change = {"before": {"metadata": {"labels": {"a": "1"}}}, "after": {"metadata": {"labels": {"a": "2"}}}}
    created = {"before": {}, "after": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}
    results = {2: {"changed": True, "result": {"results": [
        {"changed": True, "diff": bookkeeping}, {"changed": True, "diff": real},
        {"changed": True, "diff": label_change}, {"changed": True, "diff": created}]}}}
    objs = [dict(ROUTE, metadata=dict(ROUTE["metadata"], name=n)) for n in ("a", "b", "c", "d")]
    result, _calls = apply({"role": "mock_backend", "objects": objs}, results=results)
    assert [a["changed"] for a in result["applied"][1:]] == [False, True, True, True]
    assert result["changed"] is True
    only, _calls = apply({"role": "mock_backend", "objects": objs[:1]},
                         results={1: {"changed": False}, 2: {"changed": True, "diff": bookkeeping}})
    assert only["changed"] is False


# ---- plans: several roles' releases installed together ------------------------------------------

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tempo-query", "namespace": "monitoring"},
           "spec": {"ports": [{"port": 3200}]}}


def apply_plans(plans, job_results=None, started_results=None, other_result=None, **kwargs):
    """Run the action with ``plans``; background jobs finish on their second status poll.

    ``job_results`` maps a release name to its job's final result, ``started_results`` to what
    starting it returns, ``other_result`` what every other module call returns (default: changed).
    Returns (result, calls, action) with calls as (module, args, wrap_async).
    """
    action = make_action(dict({"cluster_check": False}, **dict(kwargs.pop("args", {}), plans=plans)), **kwargs)
    calls, polls, jobs = [], {}, {}

    def fake_execute_module(module_name=None, module_args=None, task_vars=None, wrap_async=False, **_kw):
        calls.append((module_name, module_args, wrap_async))
        if wrap_async:
            assert action._task.async_val > 0, "a background job needs a time limit"
            name = module_args["name"]
            if name in (started_results or {}):
                return started_results[name]
            jid = "j%d" % len(jobs)
            jobs[jid] = name
            return {"ansible_job_id": jid, "started": 1, "finished": 0, "changed": True}
        if module_name == "ansible.legacy.async_status":
            jid = module_args["jid"]
            if module_args["mode"] == "cleanup":
                return {"erased": jid}
            polls[jid] = polls.get(jid, 0) + 1
            if polls[jid] < 2:
                return {"ansible_job_id": jid, "started": 1, "finished": 0}
            return dict((job_results or {}).get(jobs[jid], {"changed": True}), finished=1, ansible_job_id=jid)
        return dict(other_result or {"changed": True})

    with mock.patch.object(action, "_execute_module", side_effect=fake_execute_module), \
            mock.patch.object(action, "_remote_expand_user", return_value="/home/u/.ansible_async"), \
            mock.patch.object(action, "get_shell_option", return_value="~/.ansible_async"), \
            mock.patch("ansible_collections.agentgateway.observability.plugins.action.deploy.POLL_SECONDS", 0):
        result = action.run(task_vars={})
    return result, calls, action


PLANS = [{"role": "prometheus", "releases": [RELEASE]},
         {"role": "tempo", "releases": [dict(RELEASE, release="tempo")], "objects": [SERVICE]}]


def test_plans_start_every_release_before_waiting_then_apply_the_objects():
    result, calls, action = apply_plans(PLANS)
    started = [c for c in calls if c[2]]
    assert [c[1]["name"] for c in started] == ["prometheus", "tempo"]
    first_poll = next(i for i, c in enumerate(calls) if c[0] == "ansible.legacy.async_status")
    assert all(calls.index(c) < first_poll for c in started), "both jobs run before the first is waited for"
    assert calls[0][0] == "agentgateway.observability.managed_namespace" and not calls[0][2]
    assert calls[-1][0] == "kubernetes.core.k8s" and calls[-1][1]["definition"] == [owned(SERVICE, "tempo")], \
        "Tempo's Service follows every release"
    cleaned = sorted(c[1]["jid"] for c in calls if c[0] == "ansible.legacy.async_status" and c[1]["mode"] == "cleanup")
    assert cleaned == ["j0", "j1"], "every job's result file is removed"
    assert {c[1]["_async_dir"] for c in calls if c[0] == "ansible.legacy.async_status"} == {"/home/u/.ansible_async"}
    assert action._task.async_val == 0, "the task's async setting is restored"
    assert result["roles"] == ["prometheus", "tempo"]
    assert [(a["role"], a["target"]) for a in result["applied"]] == [
        ("site", "namespaces monitoring"),
        ("prometheus", "release monitoring/prometheus"), ("tempo", "release monitoring/tempo"),
        ("tempo", "Service monitoring/tempo-query")]
    assert result["changed"] is True and result["namespaces"] == ["monitoring"]


def test_plans_report_every_failed_release_and_the_ones_alongside_and_stop_before_the_objects():
    plans = PLANS + [{"role": "loki", "releases": [dict(RELEASE, release="loki")]}]
    result, calls, _action = apply_plans(
        plans, job_results={"tempo": {"failed": True, "msg": "UPGRADE FAILED", "stderr": "admission refused"}},
        started_results={"loki": {"failed": True, "msg": "could not start"}})
    assert result["failed"] is True
    assert "kubernetes.core.helm failed for release monitoring/tempo (role tempo): UPGRADE FAILED: admission refused" \
        in result["msg"]
    assert "kubernetes.core.helm failed for release monitoring/loki (role loki): could not start" in result["msg"]
    assert "installed alongside: release monitoring/prometheus (role prometheus)" in result["msg"]
    assert not any(c[0] == "kubernetes.core.k8s" for c in calls), "no object after a failed release"


def test_plans_with_unchanged_releases_report_no_change():
    plans = PLANS[:1] + [{"role": "loki", "releases": [dict(RELEASE, release="loki")]}]
    unchanged = {"prometheus": {"changed": False}, "loki": {"changed": False}}
    result, _calls, _action = apply_plans(plans, job_results=unchanged, other_result={"changed": False})
    assert result["changed"] is False, "an unchanged release reports no change (starting its job does not count)"
    assert [a["changed"] for a in result["applied"] if a["module"] == "kubernetes.core.helm"] == [False, False]
    one_changed = dict(unchanged, loki={"changed": True})
    result, _calls, _action = apply_plans(plans, job_results=one_changed, other_result={"changed": False})
    assert result["changed"] is True


def test_plans_in_check_mode_run_the_releases_one_after_the_other():
    _result, calls, _action = apply_plans(PLANS, check_mode=True)
    assert not any(c[2] for c in calls) and not any(c[0] == "ansible.legacy.async_status" for c in calls)
    assert [c[1]["name"] for c in calls if c[0] == "kubernetes.core.helm"] == ["prometheus", "tempo"]


def test_plans_validate_every_plan_before_anything_changes():
    bad = {"role": "loki", "releases": [dict(RELEASE, chart=dict(RELEASE["chart"], version="latest"))]}
    with pytest.raises(AnsibleActionFail, match="role loki"):
        apply_plans(PLANS + [bad])
    action = make_action({"plans": PLANS + [bad]})
    with mock.patch.object(action, "_execute_module") as execute:
        with pytest.raises(AnsibleActionFail):
            action.run(task_vars={})
    execute.assert_not_called()


def test_plans_go_in_waves_a_roles_releases_in_order_different_roles_together():
    """wave n holds each role's n-th release: agentgateway's CRDs chart goes with Prometheus, its controller after."""
    crds = dict(RELEASE, release="agentgateway-crds", namespace="agentgateway-system")
    controller = dict(RELEASE, release="agentgateway", namespace="agentgateway-system")
    plans = PLANS + [{"role": "agentgateway", "releases": [crds, controller], "after_releases": [ROUTE]}]
    result, calls, _action = apply_plans(plans)
    started = [c[1]["name"] for c in calls if c[2]]
    assert started == ["prometheus", "tempo", "agentgateway-crds"], "the first wave runs together"
    second_wave = next(i for i, c in enumerate(calls) if c[0] == "kubernetes.core.helm" and c[1]["name"] == "agentgateway")
    first_wave_done = max(i for i, c in enumerate(calls) if c[0] == "ansible.legacy.async_status"
                          and c[1]["mode"] == "cleanup")
    assert first_wave_done < second_wave, "the controller's release (alone in its wave) waits for the first wave"
    assert [c[1]["definition"][0]["kind"] for c in calls if c[0] == "kubernetes.core.k8s"] == ["Service", "HTTPRoute"]
    assert result["changed"] is True


def test_plans_are_removed_in_reverse_waves_then_the_namespaces():
    crds = dict(RELEASE, release="agentgateway-crds", namespace="agentgateway-system")
    controller = dict(RELEASE, release="agentgateway", namespace="agentgateway-system")
    plans = PLANS + [{"role": "agentgateway", "releases": [crds, controller], "after_releases": [ROUTE]}]
    _result, calls, _action = apply_plans(plans, args={"state": "absent", "concurrent": False})
    order = [(c[0].split(".")[-1], c[1].get("name") or c[1]["definition"][0]["kind"] if "definition" in c[1]
              else c[1].get("name") or ",".join(c[1].get("names", []))) for c in calls]
    assert order == [("k8s", "HTTPRoute"), ("k8s", "Service"), ("helm", "agentgateway"),
                     ("helm", "agentgateway-crds"), ("helm", "tempo"), ("helm", "prometheus"),
                     ("managed_namespace", "monitoring,agentgateway-system")]


def test_plans_render_every_file_at_once_with_one_index(tmp_path):
    result, calls, _action = apply_plans(PLANS, args={"render_dir": str(tmp_path)})
    assert calls == [], "render mode contacts nothing"
    assert result["roles"] == ["prometheus", "tempo"]
    index = yaml.safe_load((tmp_path / "index.yaml").read_text())
    assert sorted({e["role"] for e in index["entries"]}) == ["prometheus", "tempo"]
    assert sorted(result["files"]) == ["helm/monitoring/prometheus.yaml", "helm/monitoring/tempo.yaml",
                                       "manifests/monitoring/Service-tempo-query.yaml"]


def test_planned_parts_are_checked_with_the_deployed_ones_but_not_deployed(tmp_path):
    """A role on its own after another in the same play: its part is checked against the other's."""
    clash = {"role": "grafana", "releases": [RELEASE]}
    with pytest.raises(AnsibleActionFail, match="role grafana would also render or apply release prometheus"):
        run({"plans": [clash], "planned": PLANS, "render_dir": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []
    fine = {"role": "grafana", "releases": [dict(RELEASE, release="grafana")]}
    result = run({"plans": [fine], "planned": PLANS, "render_dir": str(tmp_path)})
    assert result["files"] == ["helm/monitoring/grafana.yaml"]


def test_render_writes_the_labelled_namespaces_and_keeps_them_through_a_partial_render(tmp_path):
    """Pod Security labels in render mode: the site's own part (role agw_obs) holds a Namespace object per
    labelled namespace; a role rendered on its own later keeps the others; removal takes them with the
    last entry of their namespace."""
    gateway = {"role": "mock_backend", "objects": [ROUTE], "pod_security": {"agentgateway-system": "restricted"}}
    stack = {"role": "prometheus", "releases": [RELEASE], "pod_security": {"monitoring": "baseline"}}
    site = {"plans": [stack, gateway], "render_dir": str(tmp_path), "pod_security_labels": "created"}
    run(site)
    index = yaml.safe_load((tmp_path / "index.yaml").read_text())
    assert sorted((e["role"], e["path"]) for e in index["entries"] if e.get("kind") == "Namespace") == [
        ("agw_obs", "manifests/_cluster/Namespace-agentgateway-system.yaml"),
        ("agw_obs", "manifests/_cluster/Namespace-monitoring.yaml")]
    monitoring = yaml.safe_load((tmp_path / "manifests/_cluster/Namespace-monitoring.yaml").read_text())
    assert monitoring["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "agentgateway.observability", "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "baseline", "pod-security.kubernetes.io/audit": "baseline"}
    before = (tmp_path / "manifests/_cluster/Namespace-monitoring.yaml").read_text()

    partial = run({"plans": [gateway], "render_dir": str(tmp_path), "pod_security_labels": "created"})
    assert partial["changed"] is False, "the mock role on its own keeps the monitoring namespace's file"
    assert (tmp_path / "manifests/_cluster/Namespace-monitoring.yaml").read_text() == before

    gone = run({"plans": [stack], "render_dir": str(tmp_path), "state": "absent", "pod_security_labels": "created"})
    assert "manifests/_cluster/Namespace-monitoring.yaml" in gone["removed_files"]
    assert (tmp_path / "manifests/_cluster/Namespace-agentgateway-system.yaml").exists()

    unlabelled = run({"plans": [gateway], "render_dir": str(tmp_path)})
    assert unlabelled["removed_files"] == ["manifests/_cluster/Namespace-agentgateway-system.yaml"]


def test_a_partial_render_never_narrows_a_namespace_other_roles_use(tmp_path):
    """node-exporter makes the monitoring namespace privileged; tempo rendered on its own (restricted) leaves it so,
    and the whole site rendered again without node-exporter narrows it."""
    prometheus = {"role": "prometheus", "releases": [RELEASE], "pod_security": {"monitoring": "privileged"}}
    tempo = {"role": "tempo", "releases": [dict(RELEASE, release="tempo")], "pod_security": {"monitoring": "restricted"}}
    path = tmp_path / "manifests/_cluster/Namespace-monitoring.yaml"

    def level():
        return yaml.safe_load(path.read_text())["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    run({"plans": [prometheus, tempo], "render_dir": str(tmp_path), "pod_security_labels": "created"})
    assert level() == "privileged"
    run({"plans": [tempo], "render_dir": str(tmp_path), "pod_security_labels": "created"})
    assert level() == "privileged"
    run({"plans": [dict(prometheus, pod_security={"monitoring": "restricted"}), tempo], "render_dir": str(tmp_path),
         "pod_security_labels": "created"})
    assert level() == "restricted"


@pytest.mark.parametrize("mode, whole_site, relabel", [
    ("created", True, "managed"), ("all", True, "all"), ("none", True, "none"),
    ("created", False, "none"), ("all", False, "none")])
def test_existing_namespaces_are_relabelled_by_a_run_of_the_whole_site_only(mode, whole_site, relabel):
    stack = {"role": "prometheus", "releases": [RELEASE], "pod_security": {"monitoring": "restricted"}}
    _result, calls, _action = apply_plans([stack], args={
        "pod_security_labels": mode, "relabel_namespaces": whole_site, "inventory_namespace": "monitoring"},
        other_result={"changed": False, "inventory": {}, "releases": []})
    lock = [args for module, args, _wrap in calls if module.endswith("site_lock") and args["state"] == "acquired"]
    assert lock[0]["relabel"] == relabel


def test_apply_labels_the_namespaces_it_creates():
    stack = {"role": "prometheus", "releases": [RELEASE], "pod_security": {"monitoring": "restricted"}}
    _result, calls, _action = apply_plans([stack], args={"pod_security_labels": "created"})
    namespaces = [args for module, args, _wrap in calls if module.endswith("managed_namespace")]
    assert namespaces[0]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_apply_mode_checks_the_cluster_first_and_names_the_setting_to_fix():
    action = make_action({"role": "prometheus", "releases": [RELEASE], "kubeconfig": "/k", "helm_binary": "/opt/helm"})
    calls = []

    def fake(module_name=None, module_args=None, task_vars=None, **_kw):
        calls.append((module_name, module_args))
        return {"failed": True, "cause": "unreachable", "msg": "no answer from the API server at https://x"}

    with mock.patch.object(action, "_execute_module", side_effect=fake):
        with pytest.raises(AnsibleActionFail) as failure:
            action.run(task_vars={})
    assert calls == [("agentgateway.observability.cluster_preflight", {"kubeconfig": "/k", "helm_binary": "/opt/helm"})]
    assert "agw_obs_kubeconfig=/k" in str(failure.value) and "Start the cluster" in str(failure.value)


def test_plans_refuse_a_role_named_twice_and_role_with_plans():
    with pytest.raises(AnsibleActionFail, match="prometheus planned more than once"):
        apply_plans([PLANS[0], PLANS[0]])
    with pytest.raises(AnsibleActionFail, match="mutually exclusive: role|plans"):
        make_action({"role": "x", "plans": PLANS}).run(task_vars={})
    with pytest.raises(AnsibleActionFail, match="one of the following is required: role, plans"):
        make_action({"releases": [RELEASE]}).run(task_vars={})


def test_a_secrets_values_never_reach_a_diff_but_its_changed_keys_do(tmp_path):
    from ansible_collections.agentgateway.observability.plugins.action.deploy import _hide_secret_diff

    diff = _hide_secret_diff("Secret m/x", {"before": {"data": {"a": "old", "k": "same", "gone": "x"}},
                                            "after": {"data": {"a": "new", "k": "same", "n": "y"}}})
    assert diff["before"]["data"] == {"a": "(hidden)", "k": "(hidden)", "gone": "(hidden)"}
    assert diff["after"]["data"] == {"a": "(hidden), changed", "k": "(hidden)", "n": "(hidden), changed"}
    assert _hide_secret_diff("ConfigMap m/x", {"after": {"data": {"a": "1"}}})["after"]["data"] == {"a": "1"}
    secret = dict(SECRET, stringData={"password": "s3cret", "user": "admin"})
    run({"role": "grafana", "render_dir": str(tmp_path), "objects": [secret]})
    changed = dict(secret, stringData={"password": "n3w", "user": "admin"})
    result = run({"role": "grafana", "render_dir": str(tmp_path), "objects": [changed]}, check_mode=True, diff=True)
    shown = [d for d in result["diff"] if "Secret" in d["after_header"]][0]
    assert "s3cret" not in str(result) and "n3w" not in str(result)
    assert "password: (hidden), changed" in shown["after"] and "password: (hidden)\n" in shown["before"]
    assert "user: (hidden)\n" in shown["after"]
