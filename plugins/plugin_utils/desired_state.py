# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state of one role: validation, the render layout, and the arguments for kubernetes.core.

One computation, two outlets (DESIGN.md): every role hands its Helm releases and Kubernetes
objects to the ``deploy`` action, which either writes them to the render layout below or hands
them to ``kubernetes.core.helm`` / ``kubernetes.core.k8s``. Everything here is pure (no I/O),
so both outlets are unit-tested at this boundary.

Render layout::

    <render_dir>/index.yaml
    <render_dir>/helm/<namespace>/<release>.yaml
    <render_dir>/manifests/<namespace or _cluster>/<Kind>-<name>.yaml
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import yaml

INDEX_FILE = "index.yaml"
CLUSTER_DIR = "_cluster"
FIELD_MANAGER = "agentgateway-observability"

# Kinds that have no namespace. Anything else must carry metadata.namespace, so a forgotten
# namespace is an error here instead of an object landing in "default".
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "GatewayClass",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    }
)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A pinned chart version: an exact SemVer (optionally with a leading v), never a range or "latest".
REMOTE_MANIFEST_SCHEMES = ("https://", "http://", "file:///")
_PINNED_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


class DesiredStateError(ValueError):
    """Input that cannot be rendered or applied; the message names the entry and the fix."""


def plain(value):
    """Return ``value`` as builtin dict/list/str/int/float/bool/None, recursively.

    Module arguments arrive as Ansible's tagged or unsafe subclasses; YAML dumpers and equality
    checks should only ever see builtin types.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Sequence) or isinstance(value, (set, frozenset)):
        return [plain(v) for v in value]
    raise DesiredStateError("cannot render a value of type %s: %r" % (type(value).__name__, value))


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as literal blocks so rule files and configs stay readable."""


def _str_representer(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data, header=None):
    """Deterministic YAML text: sorted keys, block style, no line folding."""
    text = yaml.dump(
        plain(data),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=1000000,
        explicit_start=True,
    )
    if header:
        text = "".join("# %s\n" % line for line in header.splitlines()) + text
    return text


def _require(condition, message):
    if not condition:
        raise DesiredStateError(message)


def validate_release(release):
    """Check one Helm release entry and return it as builtin types."""
    release = plain(release)
    _require(isinstance(release, dict), "a release must be a mapping, got %r" % (release,))
    name = release.get("release")
    where = "release %r" % (name,)
    _require(
        isinstance(name, str) and len(name) <= 53 and _DNS1123_LABEL.match(name or ""),
        "%s: 'release' must be a DNS-1123 label of at most 53 characters" % where,
    )
    namespace = release.get("namespace")
    _require(
        isinstance(namespace, str) and len(namespace) <= 63 and _DNS1123_LABEL.match(namespace or ""),
        "%s: 'namespace' must be a DNS-1123 label, got %r" % (where, namespace),
    )
    chart = release.get("chart")
    _require(isinstance(chart, dict), "%s: 'chart' must be a mapping with repo or oci, name, version" % where)
    has_repo, has_oci = bool(chart.get("repo")), bool(chart.get("oci"))
    _require(has_repo != has_oci, "%s: chart needs exactly one of 'repo' (an https URL) or 'oci' (oci://...)" % where)
    if has_repo:
        _require(
            str(chart["repo"]).startswith(("https://", "http://")),
            "%s: chart.repo must be an http(s) repository URL, got %r" % (where, chart["repo"]),
        )
    else:
        _require(
            str(chart["oci"]).startswith("oci://"),
            "%s: chart.oci must start with oci://, got %r" % (where, chart["oci"]),
        )
    _require(bool(chart.get("name")), "%s: chart.name is required" % where)
    version = str(chart.get("version") or "")
    _require(
        bool(_PINNED_VERSION.match(version)),
        "%s: chart.version must be a pinned version such as 29.27.0, got %r (no ranges, no 'latest')"
        % (where, version),
    )
    values = release.get("values", {})
    _require(isinstance(values, dict), "%s: 'values' must be a mapping" % where)
    unknown = sorted(set(release) - {"release", "namespace", "chart", "values"})
    _require(not unknown, "%s: unknown keys %s" % (where, ", ".join(unknown)))
    unknown = sorted(set(chart) - {"repo", "oci", "name", "version"})
    _require(not unknown, "%s: unknown chart keys %s" % (where, ", ".join(unknown)))
    return {"release": name, "namespace": namespace, "chart": chart, "values": values}


def validate_object(obj):
    """Check one Kubernetes object and return it as builtin types."""
    obj = plain(obj)
    _require(isinstance(obj, dict), "a Kubernetes object must be a mapping, got %r" % (obj,))
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    where = "%s %r" % (kind or "object", name)
    _require(isinstance(api_version, str) and api_version, "%s: apiVersion is required" % where)
    _require(isinstance(kind, str) and re.match(r"^[A-Z][A-Za-z0-9]*$", kind or ""), "%s: kind is required" % where)
    _require(
        isinstance(name, str) and len(name) <= 253 and _DNS1123_SUBDOMAIN.match(name or ""),
        "%s: metadata.name must be a DNS-1123 subdomain" % where,
    )
    namespace = metadata.get("namespace")
    if kind in CLUSTER_SCOPED_KINDS:
        _require(namespace is None, "%s is cluster-scoped: remove metadata.namespace" % where)
    else:
        _require(
            isinstance(namespace, str) and _DNS1123_LABEL.match(namespace or ""),
            "%s: metadata.namespace is required for a namespaced kind" % where,
        )
    return obj


def validate_remote_manifest(entry):
    """A manifest that stays upstream (for example the Gateway API CRDs), named by URL."""
    entry = plain(entry)
    _require(isinstance(entry, dict), "a remote manifest must be a mapping with name and url")
    _require(
        isinstance(entry.get("url"), str) and entry["url"].startswith(REMOTE_MANIFEST_SCHEMES),
        "remote manifest %r: 'url' must be an https:// URL, an http:// mirror or a file:// path on the controller, got %r"
        % (entry.get("name"), entry.get("url")),
    )
    _require(bool(entry.get("name")), "remote manifest %r: 'name' is required" % (entry.get("url"),))
    unknown = sorted(set(entry) - {"name", "url", "version"})
    _require(not unknown, "remote manifest %r: unknown keys %s" % (entry.get("name"), ", ".join(unknown)))
    return entry


def validate_chart_mirror(mirror):
    """An air-gapped chart mirror: an http(s) chart repository URL or an oci:// prefix ('' for none)."""
    mirror = plain(mirror or "")
    _require(
        mirror == "" or (mirror.startswith(("https://", "http://", "oci://")) and " " not in mirror),
        "chart mirror %r must be an http(s):// chart repository URL or an oci:// registry prefix" % (mirror,),
    )
    return mirror.rstrip("/")


def mirror_release(release, mirror):
    """``release`` with its chart taken from ``mirror`` (same name and version), and where it came from.

    Every chart is looked up by its name in the one mirror, whatever its public home was.
    """
    if not mirror:
        return release, None
    chart = release["chart"]
    upstream = {key: chart[key] for key in ("repo", "oci") if chart.get(key)}
    new_chart = {"name": chart["name"], "version": chart["version"]}
    new_chart["oci" if mirror.startswith("oci://") else "repo"] = mirror
    mirrored = dict(release)
    mirrored["chart"] = new_chart
    return mirrored, upstream


def release_path(release):
    return "helm/%s/%s.yaml" % (release["namespace"], release["release"])


def object_path(obj):
    namespace = obj["metadata"].get("namespace") or CLUSTER_DIR
    return "manifests/%s/%s-%s.yaml" % (namespace, obj["kind"], obj["metadata"]["name"])


def object_ref(obj):
    ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        ref["namespace"] = obj["metadata"]["namespace"]
    return ref


class Plan(object):
    """What one role wants: validated and ordered, ready for either outlet."""

    def __init__(self, role, releases=(), objects_first=(), objects=(), remote_manifests=(), chart_mirror=""):
        _require(
            isinstance(role, str) and re.match(r"^[a-z][a-z0-9_]*$", role or ""),
            "'role' must be a role name such as prometheus, got %r" % (role,),
        )
        self.role = role
        self.remote_manifests = [validate_remote_manifest(m) for m in remote_manifests or ()]
        self.objects_first = [validate_object(o) for o in objects_first or ()]
        self.chart_mirror = validate_chart_mirror(chart_mirror)
        self.releases, self.upstream_charts = [], {}
        for release in releases or ():
            release, upstream = mirror_release(validate_release(release), self.chart_mirror)
            self.releases.append(release)
            if upstream:
                self.upstream_charts[release_path(release)] = upstream
        self.objects = [validate_object(o) for o in objects or ()]
        seen = {}
        for path, _entry in self.files():
            _require(path not in seen, "role %s: two entries render to %s" % (role, path))
            seen[path] = True

    def files(self):
        """(relative path, index entry) for every file this role renders."""
        for rel in self.releases:
            entry = {
                "role": self.role,
                "type": "helm_release",
                "release": rel["release"],
                "namespace": rel["namespace"],
                "chart": rel["chart"],
            }
            if release_path(rel) in self.upstream_charts:
                entry["mirror_of"] = self.upstream_charts[release_path(rel)]
            yield release_path(rel), entry
        for phase, objs in (("before_releases", self.objects_first), ("after_releases", self.objects)):
            for obj in objs:
                entry = {"role": self.role, "type": "manifest", "phase": phase}
                entry.update(object_ref(obj))
                yield object_path(obj), entry

    def namespaces(self):
        """{namespace: labels} of every namespace this role's entries live in, in order of first use.

        Namespace objects of the role contribute their labels; other namespaces get none.
        """
        found = {}
        for obj in self.objects_first + self.objects:
            if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
                found.setdefault(obj["metadata"]["name"], {}).update(obj["metadata"].get("labels") or {})
        for entry in self.releases + self.objects_first + self.objects:
            namespace = entry.get("namespace") or (entry.get("metadata") or {}).get("namespace")
            if namespace:
                found.setdefault(namespace, {})
        return found

    def documents(self):
        """{relative path: file text} for every file this role renders (index excluded)."""
        header = "Rendered by agentgateway.observability, role %s. Changes here are overwritten." % self.role
        docs = {}
        for rel in self.releases:
            docs[release_path(rel)] = dump_yaml(rel, header=header)
        for obj in self.objects_first + self.objects:
            docs[object_path(obj)] = dump_yaml(obj, header=header)
        return docs

    def index_entries(self):
        entries = []
        for path, entry in self.files():
            entry = dict(entry)
            entry["path"] = path
            entries.append(entry)
        for manifest in self.remote_manifests:
            entry = {"role": self.role, "type": "remote_manifest"}
            entry.update(manifest)
            entries.append(entry)
        return entries


def _entry_key(entry):
    return (entry.get("path") or "", entry.get("url") or "", entry.get("role") or "")


def merge_index(existing, plan, present=True):
    """Return (new index document, stale relative paths) after replacing ``plan.role``'s entries.

    Entries of other roles are kept as they are; a path another role owns is a conflict.
    """
    entries = list((existing or {}).get("entries") or [])
    others = [e for e in entries if e.get("role") != plan.role]
    mine_before = [e for e in entries if e.get("role") == plan.role]
    mine_now = plan.index_entries() if present else []
    owned = {e.get("path"): e.get("role") for e in others if e.get("path")}
    for entry in mine_now:
        if entry.get("path") in owned:
            raise DesiredStateError(
                "%s is already rendered by role %s; role %s cannot render it too"
                % (entry["path"], owned[entry["path"]], plan.role)
            )
    wanted = {e.get("path") for e in mine_now if e.get("path")}
    stale = sorted({e["path"] for e in mine_before if e.get("path") and e["path"] not in wanted})
    merged = sorted(others + mine_now, key=_entry_key)
    return {"entries": merged}, stale


def helm_module_args(release, state="present", kubeconfig=None, context=None, wait=True, wait_timeout="10m",
                     atomic=True, binary_path=None):
    """Arguments for kubernetes.core.helm for one validated release.

    The namespace exists already (the deploy path creates missing ones, labelled, so that removal
    knows which it created), so Helm never creates one. Helm 3's --atomic implies --wait, so a
    release is atomic only when waiting is on.
    """
    chart = release["chart"]
    args = {
        "name": release["release"],
        "release_namespace": release["namespace"],
        "release_state": state,
        "wait": wait,
    }
    if state == "present":
        args.update(
            {
                "chart_ref": chart["name"] if chart.get("repo") else "%s/%s" % (chart["oci"].rstrip("/"), chart["name"]),
                "chart_version": chart["version"],
                "release_values": release["values"],
                "create_namespace": False,
                "atomic": bool(atomic and wait),
                "wait_timeout": wait_timeout,
            }
        )
        if chart.get("repo"):
            args["chart_repo_url"] = chart["repo"]
    if binary_path:
        args["binary_path"] = binary_path
    if kubeconfig:
        args["kubeconfig"] = kubeconfig
    if context:
        args["context"] = context
    return args


def k8s_module_args(obj, state="present", kubeconfig=None, context=None, wait=True, wait_timeout="10m"):
    """Arguments for kubernetes.core.k8s for one validated object (server-side apply).

    A CustomResourceDefinition is always waited for until it is Established, whatever ``wait``
    says: the API server does that on its own (no node needed), and objects of its kinds follow.
    """
    args = {"state": state, "wait": wait, "wait_timeout": timeout_seconds(wait_timeout)}
    if state == "present":
        args.update({"definition": obj, "apply": True, "server_side_apply": {"field_manager": FIELD_MANAGER}})
        if obj["kind"] == "CustomResourceDefinition":
            args.update({"wait": True, "wait_condition": {"type": "Established", "status": "True"}})
    else:
        args.update(
            {
                "api_version": obj["apiVersion"],
                "kind": obj["kind"],
                "name": obj["metadata"]["name"],
            }
        )
        if obj["metadata"].get("namespace"):
            args["namespace"] = obj["metadata"]["namespace"]
    if kubeconfig:
        args["kubeconfig"] = kubeconfig
    if context:
        args["context"] = context
    return args


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def timeout_seconds(duration):
    """'10m' -> 600: kubernetes.core.k8s takes seconds, kubernetes.core.helm a Go duration."""
    match = _DURATION.match(str(duration))
    _require(bool(match and any(match.groups())), "wait_timeout must look like 90s, 5m or 1h, got %r" % (duration,))
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
