# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The day-two part of an apply run: the lock, the inventory, releases left pending, and the prune.

Used by the deploy action in apply mode when it is given the inventory namespace. In order:
``begin`` (before the first change) takes the lock (not in check mode), reads the inventory,
recovers releases an interrupted run left pending, prunes what the inventory holds for the run's
roles and the desired state lacks, and records the new entries; the action then applies;
``finish`` writes the inventory as the desired state; ``release`` gives the lock back (always).

Every cluster call goes through ``call(module_name, module_args)`` (the action's
_execute_module), so the kubernetes.core modules and helm run where the other steps run.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time

from ansible_collections.agentgateway.observability.plugins.module_utils.site_lock import format_time, utcnow
from ansible_collections.agentgateway.observability.plugins.plugin_utils import inventory as inv


class KeeperFailure(Exception):
    """A day-two step failed; the message names what and the fix."""


class SiteKeeper(object):
    def __init__(self, call, site, args, check_mode):
        self.call, self.site, self.args, self.check_mode = call, site, args, check_mode
        self.namespace = args["inventory_namespace"]
        self.kube = {k: args[k] for k in ("kubeconfig", "context") if args[k]}
        self.present = args["state"] == "present"
        self.scope = set(args["prune_roles"] if args["prune_roles"] is not None else site.roles) | set(site.roles)
        self.wanted = inv.desired(site.plans) if self.present else inv.empty()
        self.planned = inv.desired(site.plans)
        self.held = inv.empty()
        self.kept = inv.empty()  # stale entries left where they are (prune off, or a namespace not empty)
        self.locked = False
        self.final = None  # the inventory to write when the lock is given back
        self.namespaces_created = []
        self.namespaces_relabelled = []
        self.last_renewal = 0.0
        self.lease_seconds = args["lock_lease_seconds"]
        started = format_time(utcnow())
        self.me = "%s@%s pid %d %s" % (_user(), socket.gethostname(), os.getpid(), started)
        self.facts = {"host": socket.gethostname(), "user": _user(), "started": started}
        self.report = {"pruned": [], "prune_kept": {}, "recovered": []}

    # ---- module calls ----------------------------------------------------------------------
    def _module(self, name, module_args, what):
        res = self.call(name, module_args)
        if res.get("failed"):
            raise KeeperFailure("%s: %s" % (what, res.get("msg") or res.get("stderr") or "no message"))
        return res

    def _helm(self, argv, what, read_only=False):
        binary = self.args["helm_binary"] or "helm"
        kube = []
        if self.args["kubeconfig"]:
            kube += ["--kubeconfig", self.args["kubeconfig"]]
        if self.args["context"]:
            kube += ["--kube-context", self.args["context"]]
        res = self.call("ansible.legacy.command", {"argv": [binary] + argv + kube}, read_only=read_only)
        if res.get("failed") or res.get("rc"):
            raise KeeperFailure("%s: %s %s" % (what, " ".join([binary] + argv),
                                               (res.get("stderr") or res.get("msg") or "").strip()[-1000:]))
        return res.get("stdout") or ""

    # ---- the lock, and the inventory it guards --------------------------------------------
    def _lock(self, state, **more):
        args = dict(self.kube, namespace=self.namespace, holder=self.me, state=state,
                    lease_seconds=self.lease_seconds, annotations=self.facts)
        args.update(more)
        return args

    def acquire(self):
        """Take the lock; the site's namespaces are created first (labelled) where missing: the lock lives in one.

        Returns the module's result: the inventory held, and the state of the plan's releases.
        """
        namespaces = dict(self.site.namespaces()) if self.present else {}
        namespaces.setdefault(self.namespace, {})
        res = self._module("agentgateway.observability.site_lock",
                           self._lock("acquired", timeout=self.args["lock_timeout"], namespaces=namespaces,
                                      relabel=self._relabel(),
                                      releases=self._release_refs()), "the lock")
        self.locked, self.last_renewal = True, time.monotonic()
        self.namespaces_created = res.get("namespaces_created") or []
        self.namespaces_relabelled = res.get("namespaces_relabelled") or []
        return res

    def _relabel(self):
        """Which existing namespaces take the Pod Security labels of this run: only a run of the whole site
        sets them (a part's levels alone could make a shared namespace stricter than its other workloads need)."""
        if not (self.present and self.args.get("relabel_namespaces")):
            return "none"
        return {"all": "all", "created": "managed"}.get(self.args.get("pod_security_labels"), "none")

    def _release_refs(self):
        return [{"namespace": e["namespace"], "name": e["release"]} for e in self.planned["releases"]]

    def renew(self, inventory=None):
        """Renew the lock when a third of its lease has passed (called between steps and while jobs run),
        or now when ``inventory`` is to be written."""
        if not self.locked:
            return
        if inventory is None and time.monotonic() - self.last_renewal <= self.lease_seconds / 3.0:
            return
        more = self._inventory_args(inventory) if inventory is not None else {}
        self._module("agentgateway.observability.site_lock", self._lock("renewed", **more), "renewing the lock")
        self.last_renewal = time.monotonic()

    def release(self):
        """Give the lock back; with the final inventory when the run got that far."""
        if self.locked:
            self.locked = False
            more = self._inventory_args(self.final) if self.final is not None else {}
            res = self.call("agentgateway.observability.site_lock", self._lock("released", **more))
            if res.get("failed") and self.final is not None:
                raise KeeperFailure("cannot write the inventory: %s" % res.get("msg"))

    def _inventory_args(self, content):
        cm = inv.configmap(content, self.namespace)
        return {"inventory_name": inv.INVENTORY_NAME, "inventory_labels": cm["metadata"]["labels"],
                "inventory_data": {} if inv.is_empty(content) else cm["data"]}

    def _read(self):
        """Check mode: the inventory and the plan's releases, without a lock."""
        return self._module("agentgateway.observability.site_lock",
                            self._lock("read", releases=self._release_refs()), "cannot read the inventory")

    def _parse(self, data):
        try:
            return inv.parse({"metadata": {"namespace": self.namespace}, "data": data} if data else None)
        except inv.InventoryError as exc:
            raise KeeperFailure("%s. Fix or remove that ConfigMap (removing it forgets what earlier runs "
                                "created: nothing is pruned then)" % exc)

    # ---- begin: before the first change ----------------------------------------------------
    def begin(self, record):
        """Lock, read, recover, prune, record. ``record(module, labels, role, result)`` reports a change."""
        res = self._read() if self.check_mode else self.acquire()
        self.held = self._parse(res.get("inventory") or {})
        self._recover(res.get("releases") or [], record)
        self._prune(record)
        grown = inv.union(self.held, self.wanted)
        if not self.check_mode and inv.canonical(grown) != inv.canonical(self.held):
            self.renew(inventory=grown)

    def _helm_releases(self):
        """Every release helm knows (all namespaces, every state): read only when a release may be pruned."""
        out = self._helm(["list", "--all-namespaces", "--all", "--output", "json"], "cannot list the Helm releases",
                         read_only=True)
        try:
            return json.loads(out or "[]") or []
        except ValueError:
            raise KeeperFailure("helm list --output json answered no JSON: %s" % out[:500])

    def _recover(self, releases, record):
        """``releases``: the state of the plan's releases (site_lock); those pending are settled first."""
        for rel in inv.pending(releases):
            where = "release %s/%s" % (rel["namespace"], rel["release"])
            if not self.args["recover_pending"]:
                raise KeeperFailure(
                    "%s is %s: a run was interrupted while Helm worked on it, and every Helm operation on it "
                    "fails until it is settled. Run again with agw_obs_recover_pending=true (rolls it back to its "
                    "last deployed revision, or uninstalls it if it never deployed), or settle it by hand: "
                    "helm history %s -n %s, then helm rollback or helm uninstall"
                    % (where, rel["status"], rel["release"], rel["namespace"]))
            history = json.loads(self._helm(["history", rel["release"], "--namespace", rel["namespace"],
                                             "--output", "json"], "cannot read the history of %s" % where, read_only=True) or "[]")
            action, revision = inv.recovery(history)
            done = ("rolled back to revision %d" % revision) if action == "rollback" else "uninstalled (never deployed)"
            if not self.check_mode:
                argv = (["rollback", rel["release"], str(revision)] if action == "rollback"
                        else ["uninstall", rel["release"]]) + ["--namespace", rel["namespace"]]
                self._helm(argv, "cannot recover %s" % where)
            self.report["recovered"].append("%s: was %s, %s" % (where, rel["status"], done))
            record("helm", ["%s (recovered: %s)" % (where, done)], "site", {"changed": True})

    def _prune(self, record):
        gone = inv.stale(self.held, self.wanted, self.scope)
        if not self.present:
            gone = inv.stale(self.held, inv.empty(), self.scope)  # cleanup: everything of the run's roles
            gone = inv.minus(gone, self.planned)  # the plan's own entries go through the removal stages
        if not self.args["prune"]:
            self.kept = gone
            for kind in inv.KINDS:
                for entry in gone[kind]:
                    self.report["prune_kept"][inv.label(kind, entry)] = "agw_obs_prune is false"
            return
        # objects first, then releases, then namespaces (only the collection's, and only when empty)
        for entry in self._prunable_objects(gone["objects"]):
            label = inv.label("objects", entry)
            definition = {"apiVersion": entry["apiVersion"], "kind": entry["kind"],
                          "metadata": {"name": entry["name"]}}
            if entry.get("namespace"):
                definition["metadata"]["namespace"] = entry["namespace"]
            res = {"changed": True}
            if not self.check_mode:
                res = self._module("kubernetes.core.k8s", dict(self.kube, state="absent", definition=definition,
                                                               wait=self.args["wait"]),
                                   "cannot prune %s (role %s)" % (label, entry.get("role")))
            self.report["pruned"].append(label)
            record("kubernetes.core.k8s", [label + " (pruned)"], entry.get("role"), res)
        live = ({(r.get("namespace"), r.get("name")): r.get("chart") for r in self._helm_releases()}
                if gone["releases"] else {})
        for entry in gone["releases"]:
            label = inv.label("releases", entry)
            chart = live.get((entry["namespace"], entry["release"]))
            if chart is None:
                continue  # gone already
            if not inv.release_is_ours(entry, chart):
                self.report["prune_kept"][label] = "its chart is %s now, not %s: not the collection's" % (
                    chart, entry.get("chart"))
                continue
            res = {"changed": True}
            if not self.check_mode:
                args = dict(self.kube, name=entry["release"], release_namespace=entry["namespace"],
                            release_state="absent", wait=self.args["wait"])
                if self.args["helm_binary"]:
                    args["binary_path"] = self.args["helm_binary"]
                res = self._module("kubernetes.core.helm", args, "cannot prune %s (role %s)" % (label, entry["role"]))
            self.report["pruned"].append(label)
            record("kubernetes.core.helm", [label + " (pruned)"], entry.get("role"), res)
            self.renew()
        names = [e["name"] for e in gone["namespaces"]]
        if names:
            res = self._module("agentgateway.observability.managed_namespace",
                               dict(self.kube, names=names, state="absent"), "cannot prune namespaces")
            kept_names = res.get("kept") or {}
            self.kept["namespaces"] = [e for e in gone["namespaces"] if e["name"] in kept_names]
            for name, reason in kept_names.items():
                self.report["prune_kept"]["namespace %s" % name] = reason
            for name in res.get("removed") or []:
                self.report["pruned"].append("namespace %s" % name)
                record("agentgateway.observability.managed_namespace", ["namespace %s (pruned)" % name], "site",
                       {"changed": True})

    def _prunable_objects(self, entries):
        """The stale objects that exist and carry the collection's label (anything else is left alone)."""
        groups = {}
        for entry in entries:
            groups.setdefault((entry["apiVersion"], entry["kind"], entry.get("namespace")), []).append(entry)
        out = []
        for (api_version, kind, namespace), group in groups.items():
            query = dict(self.kube, api_version=api_version, kind=kind)
            if namespace:
                query["namespace"] = namespace
            res = self._module("kubernetes.core.k8s_info", query, "cannot read %s objects" % kind)
            live = {(o.get("metadata") or {}).get("name"): o for o in res.get("resources") or []}
            for entry in group:
                obj = live.get(entry["name"])
                if obj is None:
                    continue  # gone already
                if not inv.ours(obj):
                    self.report["prune_kept"][inv.label("objects", entry)] = (
                        "it lacks the label %s=%s: not the collection's" % (inv.MANAGED_BY_LABEL, inv.MANAGED_BY_VALUE))
                    continue
                out.append(entry)
        return out

    # ---- finish: after the last change -----------------------------------------------------
    def finish(self):
        """The inventory now: the desired state, the entries of roles outside the run's scope, what was kept.

        Written when the lock is given back (``release``), if it changed.
        """
        others = inv.empty()
        for kind in inv.KINDS:
            others[kind] = [e for e in self.held[kind] if e.get("role") not in self.scope]
        self.final = inv.union(inv.union(others, self.kept), self.wanted)


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "uid %d" % os.getuid()
