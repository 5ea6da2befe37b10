#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_lock
short_description: Hold the site's lock (a coordination.k8s.io Lease), and read and write the inventory it guards
version_added: 0.2.0
description:
  - The deploy action of this collection takes this lock in apply mode before its first change, renews it
    while it works, and gives it back at the end, on failure too. Check mode and render mode take no lock.
  - The lock is the Lease C(agentgateway-observability-lock) in O(namespace). Its C(holderIdentity) names
    the run, C(renewTime) and C(leaseDurationSeconds) say until when the claim holds. A run that was killed
    stops renewing, so its claim lapses by itself and the next run takes it over.
  - Every write carries the resourceVersion it read, so of two runs that try at the same moment one wins and
    the other waits.
  - The lock guards the inventory of what the collection created (the ConfigMap O(inventory_name)); with
    O(state=acquired) the module returns it as read under the lock (RV(inventory)); with O(state=renewed) or
    O(state=released) it first writes O(inventory_data) when that differs (an empty mapping removes it). So a run
    makes one call to start and one to end.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  namespace:
    description: Namespace of the Lease (the site's monitoring namespace). It must exist.
    type: str
    required: true
  holder:
    description: Who takes the lock, unique per run (the deploy action uses user, host, process and start time).
    type: str
    required: true
  state:
    description:
      - C(acquired) takes the lock, waiting up to O(timeout) seconds while another run holds it; a run that
        holds it already renews it.
      - C(renewed) renews the lock the run holds, and fails when another run has taken it over.
      - C(released) removes the Lease when O(holder) holds it; otherwise nothing changes.
      - C(read) takes no lock and changes nothing; it returns RV(inventory) and RV(releases) (check mode runs use it).
    type: str
    choices: [acquired, renewed, released, read]
    default: acquired
  lease_seconds:
    description: How long a claim holds without renewal (C(leaseDurationSeconds)).
    type: int
    default: 60
  timeout:
    description: Seconds to wait for another run's lock, with O(state=acquired).
    type: int
    default: 120
  namespaces:
    description:
      - With O(state=acquired), the namespaces of the site (name to labels), created first where missing, with the label
        C(app.kubernetes.io/managed-by=agentgateway.observability) and the given labels, as
        M(agentgateway.observability.managed_namespace) does (an existing namespace is not changed, except with
        O(relabel)). O(namespace) must be one of them, or exist.
    type: dict
    default: {}
  relabel:
    description:
      - With O(state=acquired), also set the Pod Security labels (C(pod-security.kubernetes.io/*)) that O(namespaces)
        gives on namespaces that exist already - C(managed) on those the collection created (labelled
        C(app.kubernetes.io/managed-by=agentgateway.observability)), C(all) on every one, C(none) on none. No other
        label is added, so a namespace the user created stays the user's.
    type: str
    choices: [none, managed, all]
    default: none
  releases:
    description:
      - Helm releases (each with namespace and name) whose state to report in RV(releases), read from Helm's release Secrets
        (Helm 3's default storage driver) - the state of each release's latest revision.
    type: list
    elements: dict
    default: []
  inventory_name:
    description: Name of the inventory ConfigMap in O(namespace).
    type: str
    default: agentgateway-observability-inventory
  inventory_data:
    description:
      - With O(state=renewed) or O(state=released), the inventory ConfigMap's C(data) to write before (an empty
        mapping removes the ConfigMap); unset leaves it as it is.
    type: dict
  inventory_labels:
    description: Labels of the inventory ConfigMap when it is written.
    type: dict
    default: {}
  annotations:
    description: Facts about the run (for example host, user, started), written as C(agentgateway.observability/lock-<key>).
    type: dict
    default: {}
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
    description: Check mode runs take no lock; use O(state=read) in them (other states report what they would do).
  diff_mode:
    support: none
    description: Nothing to show a diff of.
notes:
  - A claim lapses by the clock of the run that reads it (as in Kubernetes' leader election), so the
    controllers' clocks should agree to within a fraction of O(lease_seconds).
"""

EXAMPLES = r"""
- name: Take the lock (wait up to 2 minutes for another run)
  agentgateway.observability.site_lock:
    namespace: monitoring
    holder: "ops@bastion pid 4242 2026-12-03T10:00:00Z"
    timeout: 120

- name: Give it back
  agentgateway.observability.site_lock:
    namespace: monitoring
    holder: "ops@bastion pid 4242 2026-12-03T10:00:00Z"
    state: released
"""

RETURN = r"""
holder:
  description: Who holds the lock now (after O(state=released) with O(holder) holding it, nobody).
  returned: always
  type: str
  sample: "ops@bastion pid 4242 2026-12-03T10:00:00Z"
waited:
  description: Seconds spent waiting for another run's lock.
  returned: always
  type: float
  sample: 12.5
inventory:
  description: The inventory ConfigMap's C(data) (with O(state=acquired)), as read under the lock; C({}) when there is none.
  returned: always
  type: dict
  sample: {inventory.yaml: "releases: []"}
namespaces_created:
  description: Namespaces of O(namespaces) that were created.
  returned: always
  type: list
  elements: str
  sample: [monitoring]
namespaces_relabelled:
  description: Existing namespaces of O(namespaces) whose Pod Security labels were set (O(relabel)).
  returned: always
  type: list
  elements: str
  sample: [agentgateway-system]
releases:
  description: The releases of O(releases) that exist, with the status and number of their latest revision.
  returned: always
  type: list
  elements: dict
  sample: [{namespace: monitoring, release: tempo, status: pending-upgrade, revision: 2}]
inventory_changed:
  description: Whether O(inventory_data) was written (or the ConfigMap removed).
  returned: always
  type: bool
took_over:
  description: The holder of a lapsed claim that this run took over (a run that was killed), else empty.
  returned: always
  type: str
  sample: "ci@runner-7 pid 99 2026-12-03T09:00:00Z (host runner-7; user ci; its claim lapses at ...)"
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentgateway.observability.plugins.module_utils.kube_client import (
    KUBE_ARGUMENT_SPEC,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    ApiException,
    KubeError,
    api_client,
    explain,
    rest,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.site_lock import (
    LOCK_NAME,
    decide,
    describe_holder,
    lease_body,
    parse_time,
    utcnow,
)


LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases"
CONFIGMAPS = "/api/v1/namespaces/%s/configmaps"


def _conflict(exc):
    return getattr(exc, "status", None) == 409


class _Leases(object):
    """The Lease, read and written as plain JSON; writes carry the resourceVersion read (409 when stale)."""

    def __init__(self, client, namespace, timeout):
        self.client, self.base, self.timeout = client, LEASES % namespace, timeout

    def read(self):
        return rest(self.client, "GET", "%s/%s" % (self.base, LOCK_NAME), timeout=self.timeout)

    def write(self, body, create):
        """True when written; False when another run wrote first (409 Conflict, or 409 AlreadyExists)."""
        try:
            if create:
                rest(self.client, "POST", self.base, body=body, timeout=self.timeout)
            else:
                rest(self.client, "PUT", "%s/%s" % (self.base, LOCK_NAME), body=body, timeout=self.timeout)
        except ApiException as exc:
            if _conflict(exc):
                return False
            raise
        return True

    def delete(self, resource_version):
        try:
            gone = rest(self.client, "DELETE", "%s/%s" % (self.base, LOCK_NAME), timeout=self.timeout,
                        body={"preconditions": {"resourceVersion": resource_version}})
        except ApiException as exc:
            if _conflict(exc):
                return False
            raise
        return gone is not None


class _Inventory(object):
    """The inventory ConfigMap the lock guards."""

    def __init__(self, client, namespace, name, timeout):
        self.client, self.base, self.name, self.timeout = client, CONFIGMAPS % namespace, name, timeout
        self.namespace = namespace

    def read(self):
        return rest(self.client, "GET", "%s/%s" % (self.base, self.name), timeout=self.timeout)

    def write(self, data, labels):
        """Write ``data`` (empty: remove the ConfigMap); True when anything changed."""
        current = self.read()
        path = "%s/%s" % (self.base, self.name)
        if not data:
            return current is not None and rest(self.client, "DELETE", path, timeout=self.timeout) is not None
        body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels}}
        if current is None:
            rest(self.client, "POST", self.base, body=body, timeout=self.timeout)
            return True
        meta = current.get("metadata") or {}
        if (current.get("data") or {}) == data and all((meta.get("labels") or {}).get(k) == v for k, v in labels.items()):
            return False
        body["metadata"]["resourceVersion"] = meta.get("resourceVersion")
        rest(self.client, "PUT", path, body=body, timeout=self.timeout)
        return True


POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"


def relabel_namespace(client, current, labels, timeout):
    """Set the Pod Security labels of ``labels`` on the existing namespace ``current``; True when it changed.

    Only the pod-security.kubernetes.io/ labels are touched: the namespace stays the user's (no
    managed-by label, so removal never takes it).
    """
    wanted = {k: v for k, v in (labels or {}).items() if k.startswith(POD_SECURITY_PREFIX)}
    have = (current.get("metadata") or {}).get("labels") or {}
    if not wanted or all(have.get(k) == v for k, v in wanted.items()):
        return False
    body = dict(current)
    body["metadata"] = dict(current["metadata"], labels=dict(have, **wanted))
    rest(client, "PUT", "/api/v1/namespaces/%s" % current["metadata"]["name"], body=body, timeout=timeout)
    return True


def ensure_namespaces(client, namespaces, timeout, relabel="none"):
    """Create each missing namespace of ``namespaces`` ({name: labels}), labelled; (created, relabelled).

    ``relabel``: which existing namespaces get the Pod Security labels of ``namespaces`` too (none, the
    collection's own: managed, all).
    """
    created, relabelled = [], []
    for name, labels in namespaces.items():
        current = rest(client, "GET", "/api/v1/namespaces/%s" % name, timeout=timeout)
        if current is not None:
            ours = ((current.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
            wanted = relabel == "all" or (relabel == "managed" and ours)
            if wanted and relabel_namespace(client, current, labels, timeout):
                relabelled.append(name)
            continue
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels or {}, **{MANAGED_BY_LABEL: MANAGED_BY_VALUE})}}
        try:
            rest(client, "POST", "/api/v1/namespaces", body=body, timeout=timeout)
            created.append(name)
        except ApiException as exc:
            if not _conflict(exc):  # 409: created by a run that started at the same moment
                raise
    return created, relabelled


def release_states(client, releases, timeout):
    """[{namespace, release, status, revision}] of each release that exists, from Helm's release Secrets.

    Helm 3 keeps every revision of a release in a Secret labelled owner=helm, name=<release>,
    status=<status>, version=<revision> (its default storage driver): the latest revision is the
    release's state. Read here so that a run needs no helm process to find releases left pending.
    """
    found = []
    for rel in releases:
        namespace, name = rel.get("namespace"), rel.get("name")
        listed = rest(client, "GET", "/api/v1/namespaces/%s/secrets" % namespace, timeout=timeout,
                      query={"labelSelector": "owner=helm,name=%s" % name}) or {}
        revisions = []
        for item in listed.get("items") or []:
            labels = (item.get("metadata") or {}).get("labels") or {}
            revisions.append((int(labels.get("version") or 0), labels.get("status")))
        if revisions:
            revision, status = max(revisions)
            found.append({"namespace": namespace, "release": name, "status": status, "revision": revision})
    return found


def acquire(module, leases, renew_only):
    params = module.params
    me = params["holder"]
    started = time.monotonic()
    while True:
        lease = leases.read()
        now = utcnow()
        spec = (lease or {}).get("spec")
        verdict = decide(spec, me, now) if lease is not None else "create"
        if verdict == "wait" or (renew_only and verdict == "create"):
            waited = time.monotonic() - started
            if renew_only:
                holder = describe_holder(lease or {})
                module.fail_json(msg="the lock %s/%s is no longer this run's: %s holds it (this run's claim lapsed "
                                     "between two renewals: raise agw_obs_lock_lease)"
                                     % (params["namespace"], LOCK_NAME, holder),
                                 holder=(spec or {}).get("holderIdentity") or "", waited=waited, took_over="")
            if waited >= params["timeout"]:
                module.fail_json(
                    msg="another run holds the lock %s/%s: %s. Waited %d s (agw_obs_lock_timeout). Wait for that run "
                        "to finish, or raise agw_obs_lock_timeout; if that run is gone, its claim lapses by itself "
                        "(or remove it: kubectl -n %s delete lease %s)"
                        % (params["namespace"], LOCK_NAME, describe_holder(lease), waited, params["namespace"],
                           LOCK_NAME),
                    holder=spec.get("holderIdentity") or "", waited=waited, took_over="")
            time.sleep(1.0)
            continue
        acquired = parse_time(spec.get("acquireTime")) if verdict == "renew" else None
        body = lease_body(me, params["lease_seconds"], now, params["annotations"], acquired=acquired,
                          resource_version=(lease or {}).get("metadata", {}).get("resourceVersion"))
        if leases.write(body, create=verdict == "create"):
            took_over = describe_holder(lease) if verdict == "take" and spec.get("holderIdentity") else ""
            return {"changed": verdict != "renew", "holder": me, "waited": round(time.monotonic() - started, 1),
                    "took_over": took_over}


def release(module, leases):
    lease = leases.read()
    if lease is None or (lease.get("spec") or {}).get("holderIdentity") != module.params["holder"]:
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity") or ""
        return {"changed": False, "holder": holder, "waited": 0.0, "took_over": ""}
    removed = leases.delete(lease["metadata"]["resourceVersion"])
    return {"changed": removed, "holder": "", "waited": 0.0, "took_over": ""}


def main():
    spec = dict(KUBE_ARGUMENT_SPEC)
    spec.update({
        "namespace": {"type": "str", "required": True},
        "holder": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["acquired", "renewed", "released", "read"], "default": "acquired"},
        "lease_seconds": {"type": "int", "default": 60},
        "timeout": {"type": "int", "default": 120},
        "namespaces": {"type": "dict", "default": {}},
        "relabel": {"type": "str", "choices": ["none", "managed", "all"], "default": "none"},
        "releases": {"type": "list", "elements": "dict", "default": []},
        "inventory_name": {"type": "str", "default": "agentgateway-observability-inventory"},
        "inventory_data": {"type": "dict"},
        "inventory_labels": {"type": "dict", "default": {}},
        "annotations": {"type": "dict", "default": {}},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    state = params["state"]
    if params["lease_seconds"] < 5:
        module.fail_json(msg="lease_seconds=%s: a claim must hold at least 5 s" % params["lease_seconds"])
    result = {"changed": False, "holder": "", "waited": 0.0, "took_over": "", "inventory": {}, "releases": [],
              "namespaces_created": [], "namespaces_relabelled": [], "inventory_changed": False}
    if module.check_mode and state != "read":
        module.exit_json(**result)  # no lock in check mode: the deploy action reads with state=read
    try:
        client = api_client(params["kubeconfig"], params["context"])
        timeout = params["request_timeout"]
        leases = _Leases(client, params["namespace"], timeout)
        inventory = _Inventory(client, params["namespace"], params["inventory_name"], timeout)
        if params["inventory_data"] is not None and state in ("renewed", "released"):
            result["inventory_changed"] = inventory.write({str(k): str(v) for k, v in params["inventory_data"].items()},
                                                          params["inventory_labels"])
        if state == "released":
            result.update(release(module, leases))
        elif state in ("acquired", "renewed"):
            if state == "acquired":
                result["namespaces_created"], result["namespaces_relabelled"] = ensure_namespaces(
                    client, params["namespaces"], timeout, relabel=params["relabel"])
            result.update(acquire(module, leases, renew_only=state == "renewed"))
        if state in ("acquired", "read"):
            current = inventory.read()
            result["inventory"] = dict((current or {}).get("data") or {})
            result["releases"] = release_states(client, params["releases"], timeout)
        result["changed"] = bool(result["changed"] or result["inventory_changed"] or result["namespaces_created"]
                                 or result["namespaces_relabelled"])
    except KubeError as exc:
        module.fail_json(msg=exc.message, cause=exc.cause)
    except Exception as exc:  # pylint: disable=broad-except
        error = explain(exc)
        module.fail_json(msg=error.message, cause=error.cause)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
