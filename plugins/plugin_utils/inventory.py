# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory of what the collection owns in a cluster, and what a run prunes: rules without I/O.

Apply mode keeps, in the ConfigMap ``agentgateway-observability-inventory`` of the monitoring
namespace, every Helm release, object and namespace the site applied, each with the role that
owns it. A run compares it with the new desired state: what the inventory holds for the roles
the run is responsible for (its scope) and the desired state lacks is stale, and pruned.

Written twice per run: before the first change the inventory grows to hold the new entries too
(so an interrupted run leaves nothing unrecorded), and at the end it is exactly the desired state
(plus the entries of roles outside the run's scope, untouched).

Not recorded, so never pruned: the remote manifests (the Gateway API CRDs are cluster-wide and
shared; removing a CRD removes every object of its kinds) and the CRDs a chart installs (Helm
keeps those too).
"""

from __future__ import annotations

import yaml

INVENTORY_NAME = "agentgateway-observability-inventory"
INVENTORY_KEY = "inventory.yaml"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "agentgateway.observability"


class InventoryError(ValueError):
    """The inventory ConfigMap cannot be read as one."""


def _group(api_version):
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def release_key(entry):
    return ("release", entry["namespace"], entry["release"])


def object_key(entry):
    """Objects are the same whatever the version of their API: group, kind, namespace, name."""
    return ("object", _group(entry["apiVersion"]), entry["kind"], entry.get("namespace") or "", entry["name"])


def namespace_key(entry):
    return ("namespace", entry["name"])


def key_of(kind, entry):
    return {"releases": release_key, "objects": object_key, "namespaces": namespace_key}[kind](entry)


KINDS = ("releases", "objects", "namespaces")


def empty():
    return {kind: [] for kind in KINDS}


def desired(plans):
    """The inventory of ``plans`` (desired_state.Plan objects): their releases, objects and namespaces."""
    inv = empty()
    seen = set()
    for plan in plans:
        for rel in plan.releases:
            inv["releases"].append({"role": plan.role, "namespace": rel["namespace"], "release": rel["release"],
                                    "chart": rel["chart"]["name"]})
        for obj in plan.objects:
            meta = obj["metadata"]
            if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
                continue  # namespaces: below, as managed_namespace handles them
            entry = {"role": plan.role, "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"]}
            if meta.get("namespace"):
                entry["namespace"] = meta["namespace"]
            inv["objects"].append(entry)
        for name in plan.namespaces():
            if ("namespace", name) not in seen:
                seen.add(("namespace", name))
                inv["namespaces"].append({"role": plan.role, "name": name})
    return inv


def parse(configmap):
    """The inventory held by ``configmap`` (the ConfigMap as a dict, or None when there is none)."""
    if not configmap:
        return empty()
    text = (configmap.get("data") or {}).get(INVENTORY_KEY)
    where = "ConfigMap %s/%s" % ((configmap.get("metadata") or {}).get("namespace"), INVENTORY_NAME)
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as exc:
        raise InventoryError("%s: key %s is not YAML (%s)" % (where, INVENTORY_KEY, exc))
    if not isinstance(data, dict) or any(not isinstance(data.get(kind) or [], list) for kind in KINDS):
        raise InventoryError("%s: key %s is not an inventory (releases, objects, namespaces lists)"
                             % (where, INVENTORY_KEY))
    inv = empty()
    for kind in KINDS:
        for entry in data.get(kind) or []:
            try:
                key_of(kind, entry)
            except (KeyError, TypeError, AttributeError):
                raise InventoryError("%s: %s entry %r lacks a field" % (where, kind, entry))
            inv[kind].append(dict(entry))
    return inv


def stale(held, wanted, scope):
    """The entries of ``held`` whose role is in ``scope`` and that ``wanted`` lacks (an inventory)."""
    out = empty()
    for kind in KINDS:
        keys = {key_of(kind, e) for e in wanted[kind]}
        out[kind] = [e for e in held[kind] if e.get("role") in scope and key_of(kind, e) not in keys]
    return out


def union(held, wanted):
    """``wanted`` plus what ``held`` has beyond it (the inventory while a run applies)."""
    out = empty()
    for kind in KINDS:
        keys = {key_of(kind, e) for e in wanted[kind]}
        out[kind] = list(wanted[kind]) + [e for e in held[kind] if key_of(kind, e) not in keys]
    return out


def minus(held, gone):
    """``held`` without the entries of ``gone``."""
    out = empty()
    for kind in KINDS:
        keys = {key_of(kind, e) for e in gone[kind]}
        out[kind] = [e for e in held[kind] if key_of(kind, e) not in keys]
    return out


def is_empty(inv):
    return not any(inv[kind] for kind in KINDS)


def canonical(inv):
    """The inventory sorted, so that the same content always writes the same ConfigMap."""
    return {kind: sorted(inv[kind], key=lambda e, k=kind: key_of(k, e)) for kind in KINDS}


def configmap(inv, namespace):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": INVENTORY_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "agentgateway-observability"},
        },
        "data": {INVENTORY_KEY: yaml.safe_dump(canonical(inv), sort_keys=True, default_flow_style=False)},
    }


def label(kind, entry):
    """How messages and results name an entry: ``release monitoring/prometheus``, ``ConfigMap monitoring/x``."""
    if kind == "releases":
        return "release %s/%s" % (entry["namespace"], entry["release"])
    if kind == "namespaces":
        return "namespace %s" % entry["name"]
    where = "%s/%s" % (entry["namespace"], entry["name"]) if entry.get("namespace") else entry["name"]
    return "%s %s" % (entry["kind"], where)


def ours(live_object):
    """True when ``live_object`` (as the API server returns it) carries the collection's label."""
    labels = ((live_object or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def release_is_ours(entry, live_chart):
    """A live release is the inventory's when its chart (helm's ``name-version``) is the recorded chart."""
    return bool(live_chart) and (live_chart == entry.get("chart") or live_chart.startswith("%s-" % entry.get("chart")))


# ---- releases an interrupted run left pending ------------------------------------------------
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
SETTLED = ("deployed", "superseded")


def pending(releases):
    """The releases of ``releases`` ([{namespace, release, status, revision}], site_lock's) that are pending."""
    return [dict(r) for r in releases or [] if r.get("status") in PENDING]


def recovery(history):
    """What brings a pending release back: ('rollback', revision) to its last good revision, else ('uninstall', None).

    ``history`` is ``helm history --output json``: [{revision, status, ...}].
    """
    good = [int(h["revision"]) for h in history or [] if h.get("status") in SETTLED]
    if good:
        return "rollback", max(good)
    return "uninstall", None
