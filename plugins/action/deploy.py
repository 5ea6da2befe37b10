# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for agentgateway.observability.deploy: check the site's desired state, then render or apply it.

Runs on the controller. Every role's part is checked together first (the whole site, or the
roles of one play); render mode then writes every file at once and never contacts a cluster;
apply mode hands each entry to kubernetes.core.helm / kubernetes.core.k8s, in waves.
Documentation lives in plugins/modules/deploy.py.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import tempfile
import time

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase

from ansible_collections.agentgateway.observability.plugins.plugin_utils.fences import (
    LEVELS,
    POD_SECURITY_PREFIX,
    namespace_levels,
    pod_security_labels,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_keeper import KeeperFailure, SiteKeeper
from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (
    INDEX_FILE,
    POD_SECURITY_LABELS,
    SITE_ROLE,
    DesiredStateError,
    Plan,
    Site,
    claims_hint,
    dump_yaml,
    helm_module_args,
    k8s_module_args,
    merge_index,
    settings_hint,
    timeout_seconds,
    validate_object,
)

_ENTRY_OPTIONS = {
    "releases": {"type": "list", "elements": "dict", "default": []},
    "before_releases": {"type": "list", "elements": "dict", "default": [], "aliases": ["objects_first"]},
    "after_releases": {"type": "list", "elements": "dict", "default": [], "aliases": ["objects"]},
    "remote_manifests": {"type": "list", "elements": "dict", "default": []},
    "settings": {"type": "dict", "default": {}},
    "generated_secrets": {"type": "list", "elements": "dict", "default": []},
}
PLAN_OPTIONS = dict(_ENTRY_OPTIONS, role={"type": "str", "required": True},
                    node_ports={"type": "list", "elements": "dict", "default": []},
                    host_ports={"type": "list", "elements": "dict", "default": []},
                    pod_security={"type": "dict", "default": {}})

ARGUMENT_SPEC = dict(
    _ENTRY_OPTIONS,
    role={"type": "str"},
    plans={"type": "list", "elements": "dict", "options": PLAN_OPTIONS},
    planned={"type": "list", "elements": "dict", "options": PLAN_OPTIONS, "default": []},
    cluster_check={"type": "bool", "default": True},
    state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    render_dir={"type": "path"},
    kubeconfig={"type": "path"},
    context={"type": "str"},
    wait={"type": "bool", "default": True},
    wait_timeout={"type": "str", "default": "10m"},
    atomic={"type": "bool", "default": True},
    concurrent={"type": "bool", "default": True},
    chart_mirror={"type": "str", "default": ""},
    helm_binary={"type": "str", "default": ""},
    validate_only={"type": "bool", "default": False},
    inventory_namespace={"type": "str", "default": ""},
    prune={"type": "bool", "default": True},
    prune_roles={"type": "list", "elements": "str"},
    recover_pending={"type": "bool", "default": True},
    lock_timeout={"type": "str", "default": "2m"},
    lock_lease={"type": "str", "default": "60s"},
    pod_security_labels={"type": "str", "choices": list(POD_SECURITY_LABELS), "default": "none"},
    relabel_namespaces={"type": "bool", "default": False},
)

INDEX_HEADER = "Rendered by agentgateway.observability: every release and object, by role."

# Releases installed together: how often their background jobs are polled, and how long a job
# may run beyond twice the wait timeout (an atomic upgrade that fails waits again for its rollback).
POLL_SECONDS = 1.0
JOB_GRACE_SECONDS = 300

# Generated passwords: the characters of ansible.builtin.password's ascii_letters and digits.
PASSWORD_CHARS = string.ascii_letters + string.digits
HIDDEN = "(hidden)"

# What to say for each cause agentgateway.observability.cluster_preflight reports (apply mode checks
# the cluster connection and helm after the plan and before the first change). %(where)s names the
# kubeconfig and context, %(msg)s is the module's own message.
CLUSTER_PROBLEMS = {
    "kubernetes_library": "Apply mode needs the Python library 'kubernetes' where the kubernetes.core modules run: "
                          "%(msg)s. Install it there with `pip install -r requirements.txt` (kubernetes==37.0.2), "
                          "or set agw_obs_render_dir to render files without a cluster.",
    "kubeconfig": "agw_obs_kubeconfig: %(msg)s. Point agw_obs_kubeconfig at a readable kubeconfig file (or set "
                  "K8S_AUTH_KUBECONFIG), or set agw_obs_render_dir to render files without a cluster.",
    "context": "agw_obs_kube_context: %(msg)s. Set agw_obs_kube_context to one of the kubeconfig's contexts (or leave "
               "it empty for the current context).",
    "unreachable": "%(where)s: %(msg)s. Start the cluster or fix the server address in the kubeconfig (`kubectl get "
                   "--raw /version` with the same kubeconfig and context must answer), or set agw_obs_render_dir to "
                   "render files without a cluster.",
    "tls": "%(where)s: %(msg)s. The kubeconfig's certificate-authority does not match the API server: refresh the "
           "kubeconfig from the cluster.",
    "unauthorized": "%(where)s: %(msg)s. The kubeconfig's credentials are expired or wrong: refresh them (for kind: "
                    "`kind export kubeconfig`).",
    "forbidden": "%(where)s: %(msg)s. The user needs rights to create namespaces, CRDs and the stack's objects "
                 "(cluster-admin, or an equivalent role).",
    "api": "%(where)s: %(msg)s.",
    "helm_missing": "agw_obs_helm_binary=%(helm)s: %(msg)s. Install Helm 3 (3.10 or later, before 4.0) and put it on "
                    "PATH, or point agw_obs_helm_binary at it.",
    "helm_version": "agw_obs_helm_binary=%(helm)s: %(msg)s. kubernetes.core 6.2 (ansible 12.3.0) drives Helm 3 only: "
                    "install Helm 3 (3.10 or later, before 4.0) and point agw_obs_helm_binary at it.",
}


# Kinds whose objects kubernetes.core.k8s waits for (rollouts): with the lock held they run as jobs.
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"})


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _renew = staticmethod(lambda: None)  # renews the site's lock while it is held (see _apply)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC, mutually_exclusive=[["role", "plans"]], required_one_of=[["role", "plans"]])
        site, checked = self._site(args)
        if args["render_dir"] and not os.path.isabs(args["render_dir"]):
            raise AnsibleActionFail("render_dir must be an absolute path, got %r" % args["render_dir"])
        if args["validate_only"]:
            result.update(self._validate(site, checked, args))
        elif args["render_dir"]:
            result.update(self._render(site, checked, args))
        else:
            if args["cluster_check"]:
                self._check_cluster(site, args, task_vars)
            result.update(self._apply(site, args, task_vars))
        return result

    def _site(self, args):
        """(the Site to deploy, the Site checked): every part on its own, then all together.

        The checked Site holds ``planned`` too: the parts planned in this run that are not deployed by
        this call (a role used on its own after others), so two roles on one release or object or
        one NodePort are found even then.
        """
        if args["plans"] is not None:
            parts = args["plans"]
        else:
            parts = [{key: args[key] for key in _ENTRY_OPTIONS}]
            parts[0].update(role=args["role"], node_ports=[], host_ports=[])
        plans = [self._plan(part, args) for part in parts]
        deployed = {plan.role for plan in plans}
        others = [self._plan(part, args) for part in args["planned"] if part.get("role") not in deployed]
        mode = args["pod_security_labels"]
        try:
            # The Pod Security level of a namespace follows every part planned in the run, deployed now or not.
            checked = Site(others + plans, mode)
            site = Site(plans, mode, levels=checked.levels) if others else checked
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy: %s" % exc)
        return site, checked

    @staticmethod
    def _plan(part, args):
        part = {key: value for key, value in part.items() if key in PLAN_OPTIONS}  # aliases were resolved
        try:
            return Plan.from_part(part, chart_mirror=args["chart_mirror"])
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy (role %s): %s%s"
                                    % (part.get("role"), exc, settings_hint(part.get("settings"), str(exc))))

    def _check_cluster(self, site, args, task_vars):
        """Apply mode: everything the kubernetes.core modules need, checked before the first change."""
        kube = {k: args[k] for k in ("kubeconfig", "context") if args[k]}
        needs_helm = any(plan.releases for plan in site.plans)
        res = self._execute_module(module_name="agentgateway.observability.cluster_preflight", task_vars=task_vars,
                                   module_args=dict(kube, helm_binary=(args["helm_binary"] or "helm") if needs_helm else ""))
        if not res.get("failed"):
            return
        where = "agw_obs_kubeconfig=%s, agw_obs_kube_context=%s" % (
            args["kubeconfig"] or "(empty: module_defaults, K8S_AUTH_KUBECONFIG or ~/.kube/config)",
            args["context"] or "(empty: module_defaults or the current context)")
        text = CLUSTER_PROBLEMS.get(res.get("cause"), CLUSTER_PROBLEMS["api"])
        raise AnsibleActionFail(text % {"where": where, "msg": res.get("msg", "unknown error"),
                                        "helm": args["helm_binary"] or "helm"}, result={"cause": res.get("cause")})

    # ---- validate only: every check of both outlets, nothing written or applied --------------
    def _validate(self, site, checked, args):
        if args["render_dir"]:
            try:  # what the render outlet checks against the index of an earlier render
                merge_index(_read_yaml(os.path.join(args["render_dir"], INDEX_FILE)), site.plans,
                            present=args["state"] == "present")
            except DesiredStateError as exc:
                raise AnsibleActionFail("deploy: %s%s" % (exc, claims_hint(checked.claims, str(exc))))
        return {"changed": False, "mode": "validate", "roles": site.roles, "files": sorted(site.claims),
                "claims": checked.claims, "node_ports": checked.node_ports(), "host_ports": checked.host_ports()}

    # ---- generated secrets: read (or create) the controller-side file, fill the Secret key ---
    def _fill_generated_secrets(self, site):
        create = not self._task.check_mode
        for plan in site.plans:
            for spec in plan.generated_secrets:
                password = self._password(spec["file"], int(spec["length"]), create)
                secret = plan.secret_of(spec)
                secret.setdefault("data", {})[spec["key"]] = base64.b64encode(password.encode("utf-8")).decode("ascii")

    def _controller_path(self, path):
        """``path`` on the controller, resolved as ansible.builtin.password does (``~``, relative to the playbook)."""
        return self._loader.path_dwim(os.path.expanduser(path))

    def _password(self, path, length, create):
        """The password kept in ``path`` on the controller; created once (mode 0600) when missing.

        Reads the files ansible.builtin.password writes (the password, optionally followed by
        `` salt=...``), resolves ``path`` as that lookup does (``~``, relative to the playbook), and
        writes them the same way. In check mode a missing file is not created: the password is
        made up for this run only.
        """
        full = self._controller_path(path)
        try:
            with open(full, "rb") as handle:
                content = handle.read().rstrip().decode("utf-8")
            return content.split(" salt=", 1)[0].split(" ident=", 1)[0]
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleActionFail("cannot read the password file %s: %s" % (full, to_native(exc)))
        password = "".join(secrets.choice(PASSWORD_CHARS) for _index in range(length))
        if create:
            try:
                os.makedirs(os.path.dirname(full) or ".", mode=0o700, exist_ok=True)
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(password + "\n")
            except FileExistsError:  # written by a concurrent run a moment ago: use that one
                return self._password(path, length, False)
            except OSError as exc:
                raise AnsibleActionFail("cannot write the password file %s: %s" % (full, to_native(exc)))
        return password

    # ---- render outlet: every file at once, with its index -----------------------------------
    def _render(self, site, checked, args):
        root = args["render_dir"]
        present = args["state"] == "present"
        index_path = os.path.join(root, INDEX_FILE)
        existing = _read_yaml(index_path)
        try:
            index, stale = merge_index(existing, site.plans, present=present)
            namespace_part = self._namespace_part(site, checked, index, existing, root)
            index, stale_namespaces = merge_index(index, [namespace_part])
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy: %s%s" % (exc, claims_hint(checked.claims, str(exc))))
        stale = sorted(set(stale) | set(stale_namespaces))
        if present:
            self._fill_generated_secrets(site)
        desired = site.documents() if present else {}
        desired.update(namespace_part.documents())
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
            "roles": site.roles,
            "files": sorted(p for p in desired if p != INDEX_FILE),
            "changed_files": changed_files,
            "removed_files": [p for p in changed_files if p not in desired],
        }
        if self._task.diff and diffs:
            out["diff"] = diffs
        return out

    @staticmethod
    def _namespace_part(site, checked, index, existing, root):
        """The site's part of the render (role SITE_ROLE): a Namespace object for each labelled namespace
        that the render's entries use and no role renders itself.

        A namespace of the deployed roles gets its labels from this run; where roles not planned in this
        run use it too, never a stricter level than its Namespace file holds (their workloads need that
        one). One only other roles use (a role rendered on its own after the site) keeps its file; one
        that no entry uses any more goes.
        """
        used = {e.get("namespace") for e in index["entries"] if e.get("role") != SITE_ROLE and e.get("namespace")}
        planned_roles = set(checked.roles) | {SITE_ROLE}
        others = {e.get("namespace") for e in index["entries"] if e.get("role") not in planned_roles and e.get("namespace")}
        mine = {obj["metadata"]["name"]: obj for obj in site.namespace_objects()}
        planned = set(site.namespaces())
        for entry in (existing or {}).get("entries") or []:
            name = entry.get("name")
            if not (entry.get("role") == SITE_ROLE and entry.get("kind") == "Namespace" and name in used
                    and entry.get("path")):
                continue
            kept = _read_yaml(os.path.join(root, entry["path"]))
            if not isinstance(kept, dict):
                continue
            if name not in planned:
                mine[name] = kept
            elif name in others and name in mine:
                mine[name] = _most_permissive(mine[name], kept)
        return Plan(SITE_ROLE, before_releases=[mine[name] for name in sorted(mine) if name in used])

    # ---- apply outlet ----------------------------------------------------------------------
    def _apply(self, site, args, task_vars):
        """Hand every entry to kubernetes.core, in waves; stop at the first failure with its cause.

        present: every missing namespace (managed_namespace), then each role's remote manifests and
        objects before its releases, then the releases wave by wave (wave n holds each role's n-th
        release: a role's releases go in order, different roles' releases go together), then each
        role's objects after its releases. absent: the same in reverse, the namespaces last, which
        managed_namespace removes only where the collection created them and nothing else is left.
        Namespace objects go to managed_namespace, never to server-side apply, so a namespace the
        collection did not create is never taken over (and never removed).
        """
        present = args["state"] == "present"
        if present:
            self._fill_generated_secrets(site)
        stages = self._stages(site, args)
        run = _Progress(self._task.diff)
        keeper = self._keeper(site, args, task_vars)
        self._renew = keeper.renew if keeper else (lambda: None)
        together = args["concurrent"] and not self._task.check_mode
        try:
            if keeper:
                keeper.begin(run.record)
            for kind, steps in stages:
                if kind == "namespaces" and keeper and present and not self._task.check_mode:
                    # created (where missing) when the lock was taken: the lock lives in one of them
                    run.record("agentgateway.observability.managed_namespace",
                               ["namespaces %s" % ", ".join(site.namespaces())], "site",
                               {"changed": bool(keeper.namespaces_created or keeper.namespaces_relabelled)})
                    continue
                if kind == "namespaces" and not present and keeper:
                    keeper.finish()  # before the namespaces go: the inventory and the lock live in one
                    keeper.release()
                if kind == "wave" and together and len(steps) > 1:
                    failure = self._run_together(steps, run, task_vars, args)
                elif kind == "objects" and keeper and together and args["wait"]:
                    failure = self._run_objects(steps, run, task_vars, args)
                else:
                    failure = self._run_steps(steps, run, task_vars)
                if failure:
                    return dict(failure, **(keeper.report if keeper else {}))
            if keeper and present:
                keeper.finish()
                keeper.release()  # writes the inventory
        except KeeperFailure as exc:
            return dict(run.failure(str(exc)), **keeper.report)
        finally:
            if keeper:
                keeper.release()
        if not present and not self._task.check_mode:
            out_removed = self._remove_password_files(site)
        else:
            out_removed = []
        out = run.result(site.namespaces())
        out["roles"] = site.roles
        if keeper:
            out.update(keeper.report)
        if out_removed:
            out["changed"] = True
            out["removed_files"] = out_removed
        return out

    def _keeper(self, site, args, task_vars):
        """The lock, inventory, recovery and prune of this run (None without an inventory namespace)."""
        if not args["inventory_namespace"]:
            return None
        args = dict(args, lock_timeout=timeout_seconds(args["lock_timeout"]),
                    lock_lease_seconds=timeout_seconds(args["lock_lease"]))

        def call(module_name, module_args, read_only=False):
            """Run a module; ``read_only`` ones (helm list, helm history) run in check mode too."""
            saved = self._task.check_mode
            self._task.check_mode = saved and not read_only
            try:
                return self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
            finally:
                self._task.check_mode = saved

        return SiteKeeper(call, site, args, self._task.check_mode)

    def _run_objects(self, steps, run, task_vars, args):
        """Objects while the lock is held: a step that may wait long (a workload) runs as a job, so the lock is renewed."""
        for step in steps:
            if any(label.split(" ", 1)[0] in _WORKLOADS for label in step[2]):
                failure = self._run_together([step], run, task_vars, args)
            else:
                failure = self._run_steps([step], run, task_vars)
            if failure:
                return failure
        return None

    def _remove_password_files(self, site):
        """With state=absent: the controller-side files of generated secrets marked remove_on_absent."""
        removed = []
        for plan in site.plans:
            for spec in plan.generated_secrets:
                if not spec.get("remove_on_absent"):
                    continue
                full = self._controller_path(spec["file"])
                try:
                    os.unlink(full)
                    removed.append(full)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise AnsibleActionFail("cannot remove the password file %s: %s" % (full, to_native(exc)))
        return removed

    def _stages(self, site, args):
        """[(kind, [steps])]: the order the entries go in; ``wave`` stages may run together.

        A step is (role, module name, [labels of what it applies], module arguments).
        """
        kube = {"kubeconfig": args["kubeconfig"], "context": args["context"]}
        kube_wait = dict(kube, wait=args["wait"], wait_timeout=args["wait_timeout"])
        state = args["state"]
        present = state == "present"

        before, after = [], []
        for plan in site.plans:
            objects = []
            for manifest in plan.remote_manifests:
                objects.extend(self._fetch_manifest(manifest))
            objects.extend(obj for obj in plan.before_releases if not _is_namespace(obj))
            later = [obj for obj in plan.after_releases if not _is_namespace(obj)]
            if not present:
                objects, later = list(reversed(objects)), list(reversed(later))
            before.append((plan.role, objects))
            after.append((plan.role, later))
        waves = []  # wave n: every role's n-th release
        for plan in site.plans:
            for index, rel in enumerate(plan.releases):
                if index == len(waves):
                    waves.append([])
                waves[index].append((plan.role, "kubernetes.core.helm",
                                     ["release %s/%s" % (rel["namespace"], rel["release"])],
                                     helm_module_args(rel, state=state, atomic=args["atomic"],
                                                      binary_path=args["helm_binary"] or None, **kube_wait)))

        namespaces = site.namespaces()
        if args["inventory_namespace"] and not present:  # the lock's, removed last if the collection created it
            namespaces.setdefault(args["inventory_namespace"], {})
        namespace_steps = []
        for labels, names in _group_by_labels(namespaces):
            module_args = dict(kube, names=names, state=state, labels=labels,
                               wait_timeout=timeout_seconds(args["wait_timeout"]) if args["wait"] else 0)
            namespace_steps.append(("site", "agentgateway.observability.managed_namespace",
                                    ["namespaces %s" % ", ".join(names)],
                                    {k: v for k, v in module_args.items() if v is not None}))

        def objects_stage(groups):
            return ("objects", [step for role, objs in groups for step in _object_steps(role, objs, state, kube_wait)])

        if present:
            return ([("namespaces", namespace_steps), objects_stage(before)]
                    + [("wave", wave) for wave in waves] + [objects_stage(after)])
        return ([objects_stage(reversed(after))]
                + [("wave", list(reversed(wave))) for wave in reversed(waves)]
                + [objects_stage(reversed(before)), ("namespaces", namespace_steps)])

    def _run_steps(self, steps, run, task_vars):
        """Run ``steps`` one after the other; the failure result of the first that fails, else None."""
        for role, module_name, labels, module_args in steps:
            self._renew()
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
            for index, (_role, module_name, _labels, module_args) in enumerate(releases):
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
                self._renew()
                time.sleep(POLL_SECONDS)

        failed, succeeded = [], []
        for index, (role, module_name, labels, _args) in enumerate(releases):
            res = outcomes[index]
            where = "%s (role %s)" % (_summary(labels), role)
            if res.get("failed"):
                failed.append("%s failed for %s: %s" % (module_name, where, _failure_detail(res)))
            else:
                run.record(module_name, labels, role, res)
                succeeded.append(where)
        if failed:
            verb = "removed" if releases[0][3].get("release_state") == "absent" else "installed"
            alongside = "; %s alongside: %s" % (verb, ", ".join(succeeded)) if succeeded else ""
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

    def __init__(self, want_diff):
        self.want_diff = want_diff
        self.applied, self.diffs, self.changed, self.kept = [], [], False, {}

    def record(self, module_name, labels, role, res):
        results = (res.get("result") or {}).get("results") if len(labels) > 1 else None
        for index, label in enumerate(labels):
            one = results[index] if results and index < len(results) else res
            one_changed = bool(one.get("changed"))
            if one_changed and module_name == "kubernetes.core.k8s" and _bookkeeping_only(one.get("diff")):
                one_changed = False
            entry = {"module": module_name, "target": label, "changed": one_changed, "role": role}
            self.applied.append(entry)
            self.changed = self.changed or one_changed
            if one_changed and isinstance(one.get("diff"), dict) and one["diff"]:
                diff = _hide_secret_diff(label, dict(one["diff"]))
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


def _object_steps(role, objects, state, kube_wait):
    """kubernetes.core.k8s steps of ``role`` for ``objects``, consecutive ones with the same arguments in one call."""
    steps = []
    for obj in objects:
        module_args = k8s_module_args(obj, state=state, **kube_wait)
        label = "%s %s" % (obj["kind"], _where(obj))
        previous = steps[-1] if steps else None
        if previous and _same_call(previous[3], module_args):
            previous[2].append(label)
            previous[3]["definition"].append(_definition(module_args, obj))
        else:
            steps.append((role, "kubernetes.core.k8s", [label], _as_batch(module_args, obj)))
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


def _most_permissive(namespace, kept):
    """``namespace`` labelled with the most permissive of its level and ``kept``'s (fences.namespace_levels)."""
    def level(obj):
        return ((obj.get("metadata") or {}).get("labels") or {}).get(POD_SECURITY_PREFIX + "enforce")
    if level(kept) not in LEVELS or level(namespace) not in LEVELS:
        return namespace
    name = namespace["metadata"]["name"]
    merged = namespace_levels([("this run", {name: level(namespace)}), ("its file", {name: level(kept)})])[name]
    labels = dict(namespace["metadata"].get("labels") or {}, **pod_security_labels(merged))
    return dict(namespace, metadata=dict(namespace["metadata"], labels=labels))


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
    """One file's change, in the shape Ansible's diff callbacks print; a Secret's values are hidden."""
    if "/Secret-" in rel_path:
        before, after = _hide_secret_values(before, after, False), _hide_secret_values(after, before, True)
    return {
        "before_header": rel_path if before is not None else "/dev/null",
        "after_header": rel_path if after is not None else "/dev/null",
        "before": before or "",
        "after": after or "",
    }


def _hidden(values, other_values, after):
    """``values`` (a Secret's data) with every value hidden; on the after side a changed or new one says so,
    so that a diff still shows which keys changed."""
    other_values = other_values if isinstance(other_values, dict) else {}
    return {key: "%s, changed" % HIDDEN if after and other_values.get(key) != value else HIDDEN
            for key, value in values.items()}


def _hide_fields(secret, other, after):
    """A copy of ``secret`` (one side of a diff) with the values of data and stringData hidden."""
    secret, other = dict(secret), other if isinstance(other, dict) else {}
    for field in ("data", "stringData"):
        if isinstance(secret.get(field), dict):
            secret[field] = _hidden(secret[field], other.get(field), after)
    return secret


def _hide_secret_diff(label, diff):
    """kubernetes.core.k8s's diff of a Secret with its values hidden (the action returns no other part of it)."""
    if not label.startswith("Secret "):
        return diff
    before, after = diff.get("before"), diff.get("after")
    if isinstance(before, dict):
        diff["before"] = _hide_fields(before, after, False)
    if isinstance(after, dict):
        diff["after"] = _hide_fields(after, before, True)
    return diff


def _hide_secret_values(text, other, after):
    """A rendered Secret with every value of data and stringData hidden (see ``_hidden``)."""
    if text is None:
        return None
    try:
        doc, theirs = yaml.safe_load(text), yaml.safe_load(other) if other else None
    except yaml.YAMLError:
        return HIDDEN
    if not isinstance(doc, dict):
        return HIDDEN
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    return header + dump_yaml(_hide_fields(doc, theirs, after))
