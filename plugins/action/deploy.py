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

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (
    INDEX_FILE,
    DesiredStateError,
    Plan,
    dump_yaml,
    helm_module_args,
    k8s_module_args,
    merge_index,
    validate_object,
)

ARGUMENT_SPEC = {
    "role": {"type": "str", "required": True},
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
}

INDEX_HEADER = "Rendered by agentgateway.observability: every release and object, by role."


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            plan = Plan(
                args["role"],
                releases=args["releases"],
                objects_first=args["objects_first"],
                objects=args["objects"],
                remote_manifests=args["remote_manifests"],
            )
        except DesiredStateError as exc:
            raise AnsibleActionFail("deploy (role %s): %s" % (args["role"], exc))

        if args["render_dir"]:
            result.update(self._render(plan, args))
        else:
            result.update(self._apply(plan, args, task_vars))
        return result

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
        desired[INDEX_FILE] = dump_yaml(index, header=INDEX_HEADER)

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
        kube_args = {
            "kubeconfig": args["kubeconfig"],
            "context": args["context"],
            "wait": args["wait"],
            "wait_timeout": args["wait_timeout"],
        }
        state = args["state"]
        steps = []
        for manifest in plan.remote_manifests:
            for obj in self._fetch_manifest(manifest):
                steps.append(("kubernetes.core.k8s", "%s %s" % (obj["kind"], obj["metadata"]["name"]),
                              k8s_module_args(obj, state=state, **kube_args)))
        for obj in plan.objects_first:
            steps.append(("kubernetes.core.k8s", "%s %s" % (obj["kind"], obj["metadata"]["name"]),
                          k8s_module_args(obj, state=state, **kube_args)))
        for rel in plan.releases:
            steps.append(("kubernetes.core.helm", "release %s/%s" % (rel["namespace"], rel["release"]),
                          helm_module_args(rel, state=state, atomic=args["atomic"], **kube_args)))
        for obj in plan.objects:
            steps.append(("kubernetes.core.k8s", "%s %s" % (obj["kind"], obj["metadata"]["name"]),
                          k8s_module_args(obj, state=state, **kube_args)))
        if state == "absent":
            # Tear down in reverse: objects that live on top of a release go first.
            steps.reverse()

        applied, changed = [], False
        for module_name, label, module_args in steps:
            res = self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
            if res.get("failed"):
                return {
                    "failed": True,
                    "changed": changed,
                    "mode": "apply",
                    "applied": applied,
                    "msg": "%s failed for %s (role %s): %s"
                    % (module_name, label, plan.role, res.get("msg", "no message")),
                }
            changed = changed or bool(res.get("changed"))
            applied.append({"module": module_name, "target": label, "changed": bool(res.get("changed"))})
        return {"changed": changed, "mode": "apply", "applied": applied}

    def _fetch_manifest(self, manifest):
        try:
            body = open_url(manifest["url"], timeout=60, follow_redirects="safe").read()
            docs = [d for d in yaml.safe_load_all(body) if d]
            return [validate_object(d) for d in docs]
        except Exception as exc:  # pylint: disable=broad-except
            raise AnsibleActionFail(
                "could not fetch remote manifest %s from %s: %s (air-gapped? mirror it and render instead)"
                % (manifest["name"], manifest["url"], to_native(exc))
            )


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
