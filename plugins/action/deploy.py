# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for agentgateway.observability.deploy: render a role's desired state, or apply it.

Runs on the controller. Render mode writes files there and never contacts a cluster; apply
mode hands each entry to kubernetes.core.helm / kubernetes.core.k8s. Documentation lives in
plugins/modules/deploy.py.
"""

from __future__ import annotations

import os
import tempfile
import time

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase

from ansible_collections.agentgateway.observability.plugins.plugin_utils.claims import (
    check_claims,
    claims_hint,
    plan_claims,
    settings_hint,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (
    INDEX_FILE,
    DesiredStateError,
    Plan,
    dump_yaml,
    helm_module_args,
    k8s_module_args,
    merge_index,
    timeout_seconds,
    validate_object,
)

PLAN_OPTIONS = {
    "role": {"type": "str", "required": True},
    "releases": {"type": "list", "elements": "dict", "default": []},
    "objects_first": {"type": "list", "elements": "dict", "default": []},
    "objects": {"type": "list", "elements": "dict", "default": []},
    "remote_manifests": {"type": "list", "elements": "dict", "default": []},
}

ARGUMENT_SPEC = {
    "role": {"type": "str"},
    "plans": {"type": "list", "elements": "dict", "options": PLAN_OPTIONS},
    "releases": {"type": "list", "elements": "dict", "default": []},
    "objects_first": {"type": "list", "elements": "dict", "default": []},
    "objects": {"type": "list", "elements": "dict", "default": []},
    "remote_manifests": {"type": "list", "elements": "dict", "default": []},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "render_dir": {"type": "path"},
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "str", "default": "10m"},
    "atomic": {"type": "bool", "default": True},
    "chart_mirror": {"type": "str", "default": ""},
    "helm_binary": {"type": "str", "default": ""},
    "validate_only": {"type": "bool", "default": False},
    "settings": {"type": "dict", "default": {}},
    "claimed": {"type": "dict", "default": {}},
}

INDEX_HEADER = "Rendered by agentgateway.observability: every release and object, by role."

# Releases installed together (plans): how often their background jobs are polled, and how long a
# job may run beyond twice the wait timeout (an atomic upgrade that fails waits again for its rollback).
POLL_SECONDS = 1.0
JOB_GRACE_SECONDS = 300


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC, mutually_exclusive=[["role", "plans"]], required_one_of=[["role", "plans"]])
        if args["plans"] is not None:
            result.update(self._apply_plans(args, task_vars))
            return result
        try:
            plan = Plan(
                args["role"],
                releases=args["releases"],
                objects_first=args["objects_first"],
                objects=args["objects"],
                remote_manifests=args["remote_manifests"],
                chart_mirror=args["chart_mirror"],
            )
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy (role %s): %s%s" % (args["role"], exc, settings_hint(args["settings"], str(exc))))

        if args["validate_only"]:
            result.update(self._validate(plan, args))
        elif args["render_dir"]:
            result.update(self._render(plan, args))
        else:
            result.update(self._apply(plan, args, task_vars))
        return result

    # ---- validate only: every check of both outlets, nothing written or applied --------------
    def _validate(self, plan, args):
        claims = plan_claims(plan, args["settings"])
        try:
            check_claims(claims, args["claimed"])
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy (role %s): %s" % (plan.role, exc))
        if args["render_dir"]:
            if not os.path.isabs(args["render_dir"]):
                raise AnsibleActionFail("render_dir must be an absolute path, got %r" % args["render_dir"])
            try:  # what the render outlet checks against the index of an earlier render
                merge_index(_read_yaml(os.path.join(args["render_dir"], INDEX_FILE)), plan,
                            present=args["state"] == "present")
            except DesiredStateError as exc:
                raise AnsibleActionFail("deploy (role %s): %s%s" % (plan.role, exc, claims_hint(claims, str(exc))))
        return {"changed": False, "mode": "validate", "files": sorted(claims), "claims": claims}

    # ---- render outlet ---------------------------------------------------------------------
    def _render(self, plan, args):
        root = args["render_dir"]
        if not os.path.isabs(root):
            raise AnsibleActionFail("render_dir must be an absolute path, got %r" % root)
        present = args["state"] == "present"
        index_path = os.path.join(root, INDEX_FILE)
        existing = _read_yaml(index_path)
        try:
            index, stale = merge_index(existing, plan, present=present)
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy (role %s): %s" % (plan.role, exc))

        desired = plan.documents() if present else {}
        if index["entries"] or existing is None and present:
            desired[INDEX_FILE] = dump_yaml(index, header=INDEX_HEADER)
        elif existing is not None:
            stale = list(stale) + [INDEX_FILE]  # nothing is rendered any more: the index goes too

        changed_files, diffs = [], []
        for rel_path in sorted(desired):
            before = _read_text(os.path.join(root, rel_path))
            if before != desired[rel_path]:
                changed_files.append(rel_path)
                diffs.append(_diff(rel_path, before, desired[rel_path]))
        for rel_path in stale:
            before = _read_text(os.path.join(root, rel_path))
            if before is not None:
                changed_files.append(rel_path)
                diffs.append(_diff(rel_path, before, None))

        if changed_files and not self._task.check_mode:
            for rel_path in changed_files:
                full = os.path.join(root, rel_path)
                if rel_path in desired:
                    _write_atomic(full, desired[rel_path])
                else:
                    os.unlink(full)
                    _prune_empty_dirs(os.path.dirname(full), root)

        out = {
            "changed": bool(changed_files),
            "mode": "render",
            "render_dir": root,
            "files": sorted(p for p in desired if p != INDEX_FILE),
            "changed_files": changed_files,
            "removed_files": [p for p in changed_files if p not in desired],
        }
        if self._task.diff and diffs:
            out["diff"] = diffs
        return out

    # ---- apply outlet ----------------------------------------------------------------------
    def _apply(self, plan, args, task_vars):
        """Hand every entry to kubernetes.core, in order; stop at the first failure with its cause.

        present: missing namespaces (managed_namespace), remote manifests, objects_first, releases,
        objects. absent: the same in reverse, then this role's namespaces, which managed_namespace
        removes only where the collection created them and nothing else is left in them.
        Namespace objects go to managed_namespace, never to server-side apply, so a namespace the
        collection did not create is never taken over (and never removed).
        Consecutive objects go to kubernetes.core.k8s in one call (one process, one API client).
        """
        stages = self._stages(plan, args)
        run = _Progress(self._task.diff)
        for steps in stages:
            failure = self._run_steps(steps, plan.role, run, task_vars)
            if failure:
                return failure
        return run.result(plan.namespaces())

    def _apply_plans(self, args, task_vars):
        """Several roles' desired states at once: their releases are installed concurrently.

        Every plan is validated and every remote manifest fetched before anything changes. Then,
        plan by plan, the namespaces, remote manifests and objects_first; then every plan's
        releases together, each kubernetes.core.helm run a background job of its own; then, plan
        by plan, the objects. A release that fails does not stop the others (each is atomic on its
        own); the objects wait until every release is in, so a failure stops before them.
        Check mode runs the releases one after the other (nothing changes, so nothing to overlap).
        """
        if args["render_dir"] or args["validate_only"] or args["state"] != "present":
            raise AnsibleActionFail(
                "plans installs several roles' releases together, in apply mode with state=present only; "
                "render, validate or remove them one role at a time with role=...")
        plans = []
        for entry in args["plans"]:
            try:
                plans.append(Plan(entry["role"], releases=entry["releases"], objects_first=entry["objects_first"],
                                  objects=entry["objects"], remote_manifests=entry["remote_manifests"],
                                  chart_mirror=args["chart_mirror"]))
            except DesiredStateError as exc:
                raise AnsibleActionFail("deploy (role %s): %s" % (entry["role"], exc))
        roles = [plan.role for plan in plans]
        if len(set(roles)) != len(roles):
            raise AnsibleActionFail("plans names role(s) %s more than once; hand each role's state over once"
                                    % ", ".join(sorted({r for r in roles if roles.count(r) > 1})))
        staged = [(plan.role, self._stages(plan, args)) for plan in plans]

        run = _Progress(self._task.diff, with_roles=True)
        for role, (before, _releases, _after) in staged:
            failure = self._run_steps(before, role, run, task_vars)
            if failure:
                return failure
        releases = [(role, step) for role, (_before, steps, _after) in staged for step in steps]
        if self._task.check_mode or len(releases) < 2:
            for role, step in releases:
                failure = self._run_steps([step], role, run, task_vars)
                if failure:
                    return failure
        else:
            failure = self._run_together(releases, run, task_vars, args)
            if failure:
                return failure
        for role, (_before, _releases, after) in staged:
            failure = self._run_steps(after, role, run, task_vars)
            if failure:
                return failure
        out = run.result(set().union(*[plan.namespaces() for plan in plans]))
        out["roles"] = roles
        return out

    def _stages(self, plan, args):
        """([steps before the releases], [one step per release], [steps after]) for ``plan``.

        A step is (module name, [labels of what it applies], module arguments). For state=absent
        the stages hold the removal, in reverse order, and the namespaces come last.
        """
        kube = {"kubeconfig": args["kubeconfig"], "context": args["context"]}
        kube_wait = dict(kube, wait=args["wait"], wait_timeout=args["wait_timeout"])
        state = args["state"]

        before = []
        for manifest in plan.remote_manifests:
            before.extend(self._fetch_manifest(manifest))
        before.extend(obj for obj in plan.objects_first if not _is_namespace(obj))
        after = [obj for obj in plan.objects if not _is_namespace(obj)]
        releases = [
            ("kubernetes.core.helm", ["release %s/%s" % (rel["namespace"], rel["release"])],
             helm_module_args(rel, state=state, atomic=args["atomic"], binary_path=args["helm_binary"] or None,
                              **kube_wait))
            for rel in plan.releases
        ]

        namespace_steps = []
        for labels, names in _group_by_labels(plan.namespaces()):
            module_args = dict(kube, names=names, state=state, labels=labels,
                               wait_timeout=timeout_seconds(args["wait_timeout"]) if args["wait"] else 0)
            namespace_steps.append(("agentgateway.observability.managed_namespace", ["namespaces %s" % ", ".join(names)],
                                    {k: v for k, v in module_args.items() if v is not None}))
        if state == "absent":  # tear down in reverse: objects on top of a release go first, namespaces last
            before, after, releases = list(reversed(after)), list(reversed(before)), list(reversed(releases))
        if not releases:  # consecutive objects share a call across the stages too
            before, after = before + after, []
        stages = [_object_steps(before, state, kube_wait), releases, _object_steps(after, state, kube_wait)]
        if state == "present":
            stages[0] = namespace_steps + stages[0]
        else:
            stages[2] = stages[2] + namespace_steps
        return tuple(stages)

    def _run_steps(self, steps, role, run, task_vars):
        """Run ``steps`` one after the other; the failure result of the first that fails, else None."""
        for module_name, labels, module_args in steps:
            # kubernetes.core.k8s always runs with diff, so that a write that changed only the API
            # server's bookkeeping can be told apart from a real change (see _bookkeeping_only).
            self._task.diff = run.want_diff or module_name == "kubernetes.core.k8s"
            try:
                res = self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
            finally:
                self._task.diff = run.want_diff
            if res.get("failed"):
                return run.failure("%s failed for %s (role %s): %s"
                                   % (module_name, _summary(labels), role, _failure_detail(res)))
            run.record(module_name, labels, role, res)
        return None

    def _run_together(self, releases, run, task_vars, args):
        """Run one kubernetes.core.helm step per (role, step) as concurrent background jobs.

        Ansible's own async machinery (async_wrapper to start, async_status to poll and to remove
        the job file, which holds the module's result) runs them; every job is waited for, so
        none is left behind. Helm keeps each release in Secrets of its own, and resolves a chart
        repository URL into an index file named at random per call (helm 3.17 pkg/repo), so
        distinct releases installed at the same time do not share state on either side.
        """
        limit = 2 * timeout_seconds(args["wait_timeout"]) + JOB_GRACE_SECONDS
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        jobs, outcomes = [], {}
        saved_async = self._task.async_val
        self._task.async_val = limit
        try:
            for index, (_role, (module_name, _labels, module_args)) in enumerate(releases):
                started = self._execute_module(module_name=module_name, module_args=module_args,
                                               task_vars=task_vars, wrap_async=True)
                if started.get("failed") or not started.get("ansible_job_id"):
                    outcomes[index] = started
                else:
                    jobs.append((index, started["ansible_job_id"]))
        finally:
            self._task.async_val = saved_async

        deadline = time.monotonic() + limit + JOB_GRACE_SECONDS
        while jobs:
            for index, jid in list(jobs):
                status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                              module_args={"jid": jid, "mode": "status", "_async_dir": async_dir})
                if status.get("finished") or status.get("failed"):
                    outcomes[index] = status
                    jobs.remove((index, jid))
                    self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                         module_args={"jid": jid, "mode": "cleanup", "_async_dir": async_dir})
            if jobs and time.monotonic() > deadline:
                for index, jid in jobs:
                    outcomes[index] = {"failed": True, "msg": "job %s did not finish within %d s" % (jid, limit)}
                break
            if jobs:
                time.sleep(POLL_SECONDS)

        failed, succeeded = [], []
        for index, (role, (module_name, labels, _args)) in enumerate(releases):
            res = outcomes[index]
            where = "%s (role %s)" % (_summary(labels), role)
            if res.get("failed"):
                failed.append("%s failed for %s: %s" % (module_name, where, _failure_detail(res)))
            else:
                run.record(module_name, labels, role, res)
                succeeded.append(where)
        if failed:
            alongside = "; installed alongside: %s" % ", ".join(succeeded) if succeeded else ""
            return run.failure("%s%s" % ("; ".join(failed), alongside))
        return None

    def _fetch_manifest(self, manifest):
        url = manifest["url"]
        try:
            if url.startswith("file://"):
                with open(url[len("file://"):], "rb") as handle:
                    body = handle.read()
            else:
                body = open_url(url, timeout=60, follow_redirects="safe").read()
            docs = [d for d in yaml.safe_load_all(body) if d]
            return [validate_object(d) for d in docs]
        except Exception as exc:  # pylint: disable=broad-except
            raise AnsibleActionFail(
                "could not read remote manifest %s from %s: %s (air-gapped? point its URL at a mirror or a file:// copy)"
                % (manifest["name"], url, to_native(exc))
            )


class _Progress(object):
    """What an apply run has done so far: the applied list, diffs, changed, kept namespaces."""

    def __init__(self, want_diff, with_roles=False):
        self.want_diff = want_diff
        self.with_roles = with_roles
        self.applied, self.diffs, self.changed, self.kept = [], [], False, {}

    def record(self, module_name, labels, role, res):
        results = (res.get("result") or {}).get("results") if len(labels) > 1 else None
        for index, label in enumerate(labels):
            one = results[index] if results and index < len(results) else res
            one_changed = bool(one.get("changed"))
            if one_changed and module_name == "kubernetes.core.k8s" and _bookkeeping_only(one.get("diff")):
                one_changed = False
            entry = {"module": module_name, "target": label, "changed": one_changed}
            if self.with_roles:
                entry["role"] = role
            self.applied.append(entry)
            self.changed = self.changed or one_changed
            if one_changed and isinstance(one.get("diff"), dict) and one["diff"]:
                diff = dict(one["diff"])
                diff.setdefault("before_header", label)
                diff.setdefault("after_header", label)
                self.diffs.append(diff)
        self.kept.update(res.get("kept") or {})

    def failure(self, msg):
        return {"failed": True, "changed": self.changed, "mode": "apply", "applied": self.applied, "msg": msg}

    def result(self, namespaces):
        out = {"changed": self.changed, "mode": "apply", "applied": self.applied, "namespaces": sorted(namespaces)}
        if self.kept:
            out["kept_namespaces"] = self.kept
        if self.diffs and self.want_diff:
            out["diff"] = self.diffs
        return out


def _failure_detail(res):
    detail = res.get("msg", "no message")
    stderr = (res.get("stderr") or "").strip()
    if stderr and stderr not in detail:
        detail = "%s: %s" % (detail, stderr[-2000:])
    return detail


def _object_steps(objects, state, kube_wait):
    """kubernetes.core.k8s steps for ``objects``, consecutive ones with the same arguments in one call."""
    steps = []
    for obj in objects:
        module_args = k8s_module_args(obj, state=state, **kube_wait)
        label = "%s %s" % (obj["kind"], _where(obj))
        previous = steps[-1] if steps else None
        if previous and _same_call(previous[2], module_args):
            previous[1].append(label)
            previous[2]["definition"].append(_definition(module_args, obj))
        else:
            steps.append(("kubernetes.core.k8s", [label], _as_batch(module_args, obj)))
    return steps


# Fields the API server keeps for itself. A server-side apply that changed only these is not a
# change of the desired state: for example the first re-apply after a controller wrote an object's
# status (CRDs, ValidatingAdmissionPolicies) re-sorts managedFields and bumps resourceVersion once.
_BOOKKEEPING = frozenset({"managedFields", "resourceVersion"})


def _bookkeeping_only(diff):
    if not isinstance(diff, dict) or not diff:
        return False
    for side in ("before", "after"):
        part = diff.get(side) or {}
        if not isinstance(part, dict) or set(part) - {"metadata"}:
            return False
        if set(part.get("metadata") or {}) - _BOOKKEEPING:
            return False
    return True


def _definition(module_args, obj):
    """The object to apply, or for removal just what names it."""
    if "definition" in module_args:
        return module_args["definition"]
    meta = {"name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        meta["namespace"] = obj["metadata"]["namespace"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}


def _as_batch(module_args, obj):
    """k8s arguments that take a list of definitions (removal too: kubernetes.core deletes by definition)."""
    batch = {k: v for k, v in module_args.items() if k not in ("api_version", "kind", "name", "namespace")}
    batch["definition"] = [_definition(module_args, obj)]
    return batch


def _same_call(batch, module_args):
    """True when ``module_args`` differ from the batch's only in the object (same state and wait)."""
    keys = set(batch) | set(module_args)
    ignored = {"definition", "api_version", "kind", "name", "namespace"}
    return all(batch.get(k) == module_args.get(k) for k in keys - ignored)


def _summary(labels):
    return labels[0] if len(labels) == 1 else "%d objects (%s)" % (len(labels), ", ".join(labels))


def _is_namespace(obj):
    return obj["kind"] == "Namespace" and obj["apiVersion"] == "v1"


def _where(obj):
    meta = obj["metadata"]
    return "%s/%s" % (meta["namespace"], meta["name"]) if meta.get("namespace") else meta["name"]


def _group_by_labels(namespaces):
    """[(labels, [names])] so namespaces that want the same labels share one module call."""
    groups = {}
    for name, labels in namespaces.items():
        groups.setdefault(tuple(sorted(labels.items())), []).append(name)
    return [(dict(key), names) for key, names in groups.items()]


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _read_yaml(path):
    text = _read_text(path)
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnsibleActionFail("%s is not valid YAML (%s); remove it or pick another render_dir" % (path, exc))
    if data is not None and not isinstance(data, dict):
        raise AnsibleActionFail("%s is not a render index; pick another render_dir" % path)
    return data


def _write_atomic(path, text):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _prune_empty_dirs(directory, root):
    root = os.path.abspath(root)
    directory = os.path.abspath(directory)
    while directory.startswith(root + os.sep) and not os.listdir(directory):
        os.rmdir(directory)
        directory = os.path.dirname(directory)


def _diff(rel_path, before, after):
    """One file's change, in the shape Ansible's diff callbacks print."""
    return {
        "before_header": rel_path if before is not None else "/dev/null",
        "after_header": rel_path if after is not None else "/dev/null",
        "before": before or "",
        "after": after or "",
    }
