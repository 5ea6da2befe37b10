#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: managed_namespace
short_description: Create the namespaces the collection needs, and remove only those it created once they are empty
version_added: 0.1.0
description:
  - With O(state=present), creates each namespace in O(names) that does not exist yet, with the label
    C(app.kubernetes.io/managed-by=agentgateway.observability) (plus O(labels)). A namespace that already
    exists is never changed; it is yours, and it stays yours.
  - With O(state=absent), removes each namespace in O(names) that carries that label, once nothing is left
    in it that somebody created. Objects Kubernetes adds by itself (the C(kube-root-ca.crt) ConfigMap,
    the C(default) ServiceAccount, events, endpoints) and objects with an owner or already being deleted
    do not count. A namespace with anything else in it is kept, and RV(kept) says what is in it.
  - So removing the collection never takes a namespace, or an object, that it did not create.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  names:
    description: The namespaces.
    type: list
    elements: str
    required: true
  state:
    description: C(present) creates missing namespaces; C(absent) removes the collection's empty ones.
    type: str
    choices: [present, absent]
    default: present
  labels:
    description: More labels for namespaces this module creates (the managed-by label is always set).
    type: dict
    default: {}
  wait_timeout:
    description: Seconds to wait, with O(state=absent), until a removed namespace is gone (0 does not wait).
    type: int
    default: 120
  kubeconfig:
    description: Path of the kubeconfig file; empty uses C(K8S_AUTH_KUBECONFIG), then C(~/.kube/config).
    type: path
  context:
    description: Context in the kubeconfig; empty uses C(K8S_AUTH_CONTEXT), then the current context.
    type: str
  request_timeout:
    description: Seconds to wait for each answer of the API server.
    type: float
    default: 10.0
attributes:
  check_mode:
    support: full
    description: Reports what it would create or remove, and changes nothing.
  diff_mode:
    support: none
    description: Nothing to show a diff of.
notes:
  - Namespace removal is finished by the namespace controller of kube-controller-manager, which deletes what
    is left (for example Pods of removed Deployments) before the namespace goes.
"""

EXAMPLES = r"""
- name: Namespaces for the stack
  agentgateway.observability.managed_namespace:
    names: [monitoring, agentgateway-system]

- name: Remove them again, where the collection created them and they are empty
  agentgateway.observability.managed_namespace:
    names: [monitoring, agentgateway-system]
    state: absent
"""

RETURN = r"""
created:
  description: Namespaces created (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [monitoring]
existing:
  description: Namespaces that exist and were left as they are (O(state=present)).
  returned: always
  type: list
  elements: str
  sample: [default]
removed:
  description: Namespaces removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [monitoring]
kept:
  description: With O(state=absent), namespaces not removed, with the reason.
  returned: always
  type: dict
  sample: {team-a: "not created by agentgateway.observability", monitoring: "holds ConfigMap/my-settings"}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentgateway.observability.plugins.module_utils.kube_client import (
    KUBE_ARGUMENT_SPEC,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    KubeError,
    api_client,
    explain,
    namespace_leftovers,
)


def _read(core, name, timeout):
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel

    try:
        return core.read_namespace(name, _request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ensure_present(module, client, core, names, timeout):
    created, existing = [], []
    for name in names:
        if _read(core, name, timeout) is not None:
            existing.append(name)
            continue
        created.append(name)
        if not module.check_mode:
            labels = dict(module.params["labels"])
            labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name, "labels": labels}}, _request_timeout=timeout)
    return {"created": created, "existing": existing, "removed": [], "kept": {}}


def ensure_absent(module, client, core, names, timeout):
    removed, kept = [], {}
    for name in names:
        namespace = _read(core, name, timeout)
        if namespace is None:
            continue
        labels = namespace.metadata.labels or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
            kept[name] = "not created by %s" % MANAGED_BY_VALUE
            continue
        if namespace.metadata.deletion_timestamp:
            removed.append(name)
            continue
        leftovers = namespace_leftovers(client, name, timeout)
        if leftovers:
            more = " and %d more" % (len(leftovers) - 10) if len(leftovers) > 10 else ""
            kept[name] = "holds %s%s" % (", ".join(leftovers[:10]), more)
            continue
        removed.append(name)
        if not module.check_mode:
            core.delete_namespace(name, _request_timeout=timeout)
    if removed and not module.check_mode and module.params["wait_timeout"] > 0:
        deadline = time.monotonic() + module.params["wait_timeout"]
        pending = list(removed)
        while pending and time.monotonic() < deadline:
            pending = [name for name in pending if _read(core, name, timeout) is not None]
            if pending:
                time.sleep(0.5)
        if pending:
            module.fail_json(msg="namespaces %s are still terminating after %ss: is kube-controller-manager running?"
                             % (", ".join(pending), module.params["wait_timeout"]),
                             removed=removed, kept=kept, created=[], existing=[])
    return {"created": [], "existing": [], "removed": removed, "kept": kept}


def main():
    spec = dict(KUBE_ARGUMENT_SPEC)
    spec.update({
        "names": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "labels": {"type": "dict", "default": {}},
        "wait_timeout": {"type": "int", "default": 120},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    names = list(dict.fromkeys(params["names"]))  # once each, in order
    timeout = params["request_timeout"]
    try:
        client = api_client(params["kubeconfig"], params["context"])
        from kubernetes import client as k8s_client  # pylint: disable=import-outside-toplevel

        core = k8s_client.CoreV1Api(client)
        if params["state"] == "present":
            result = ensure_present(module, client, core, names, timeout)
        else:
            result = ensure_absent(module, client, core, names, timeout)
    except KubeError as exc:
        module.fail_json(msg=exc.message, cause=exc.cause)
    except Exception as exc:  # pylint: disable=broad-except
        error = explain(exc)
        module.fail_json(msg=error.message, cause=error.cause)
    module.exit_json(changed=bool(result["created"] or result["removed"]), **result)


if __name__ == "__main__":
    main()
