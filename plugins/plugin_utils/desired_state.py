# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired state: each role's part of it (``Plan``), the whole site (``Site``), the render
layout, and the arguments for kubernetes.core.

One computation, two outlets: every role's ``tasks/plan.yml`` builds its part (Helm releases,
Kubernetes objects, the NodePorts it claims), the site collects the parts, and the ``deploy``
action checks them together, then either writes them to the render layout below or hands them
to ``kubernetes.core.helm`` / ``kubernetes.core.k8s``. Everything here is pure (no I/O), so
both outlets are unit-tested at this boundary.

Render layout::

    <render_dir>/index.yaml
    <render_dir>/helm/<namespace>/<release>.yaml
    <render_dir>/manifests/<namespace or _cluster>/<Kind>-<name>.yaml
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import yaml

from ansible_collections.agentgateway.observability.plugins.plugin_utils.fences import (
    FenceError,
    check_level,
    namespace_levels,
    pod_security_labels,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.kind_config import node_port_problems
from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import (
    is_dns_subdomain,
    is_k8s_name,
    is_pinned_version,
    wait_seconds,
)

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

REMOTE_MANIFEST_SCHEMES = ("https://", "http://", "file:///")


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
        is_k8s_name(name, 53),
        "%s: 'release' must be a DNS-1123 label of at most 53 characters" % where,
    )
    namespace = release.get("namespace")
    _require(
        is_k8s_name(namespace),
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
        is_pinned_version(version),
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
        is_dns_subdomain(name),
        "%s: metadata.name must be a DNS-1123 subdomain" % where,
    )
    namespace = metadata.get("namespace")
    if kind in CLUSTER_SCOPED_KINDS:
        _require(namespace is None, "%s is cluster-scoped: remove metadata.namespace" % where)
    else:
        _require(
            is_k8s_name(namespace),
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


# Every object the collection applies names the role that owns it (the site's inventory holds the same),
# so it can be traced from the cluster side; the label app.kubernetes.io/managed-by marks it as the collection's.
ROLE_ANNOTATION = "agentgateway.observability/role"
# The label of the namespaces the collection creates (managed_namespace, site_lock: removal takes only those).
NAMESPACE_LABELS = {"app.kubernetes.io/managed-by": "agentgateway.observability"}


def _owned(obj, role):
    if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
        return obj
    obj = dict(obj, metadata=dict(obj["metadata"]))
    obj["metadata"]["annotations"] = dict(obj["metadata"].get("annotations") or {}, **{ROLE_ANNOTATION: role})
    return obj


PLAN_KEYS = ("role", "releases", "before_releases", "after_releases", "remote_manifests", "settings", "node_ports",
             "host_ports", "generated_secrets", "pod_security")

# Which namespaces get Pod Security labels (agw_obs_pod_security_labels): none; those the collection
# creates; or every namespace of the site it manages, existing ones relabelled too.
POD_SECURITY_LABELS = ("none", "created", "all")

# The site's own part of a render: the Namespace objects that carry labels no role renders (index role).
SITE_ROLE = "agw_obs"


class Plan(object):
    """One role's part of the desired state: validated and ordered, ready for either outlet.

    ``before_releases`` are objects applied before the releases (a Secret a chart reads, a
    namespace), ``after_releases`` the objects applied after them (objects of kinds a release
    installs). ``settings`` names the role variables behind its names ({variable: value}), so
    messages can name them; ``node_ports`` ({setting, port, what}) and ``host_ports`` (claims of a
    host port for a NodePort) are checked across roles; ``generated_secrets`` name Secret keys the
    deploy path fills from a controller-side file when it writes or applies them. ``pod_security``
    ({namespace: level}) names the Pod Security level the role's workloads meet in each namespace
    (fences.LEVELS), or ``unmanaged`` for a namespace the role uses but the user owns.
    """

    def __init__(self, role, releases=(), before_releases=(), after_releases=(), remote_manifests=(), chart_mirror="",
                 settings=None, node_ports=(), host_ports=(), generated_secrets=(), pod_security=None):
        _require(
            isinstance(role, str) and re.match(r"^[a-z][a-z0-9_]*$", role or ""),
            "'role' must be a role name such as prometheus, got %r" % (role,),
        )
        self.role = role
        self.remote_manifests = [validate_remote_manifest(m) for m in remote_manifests or ()]
        self.before_releases = [_owned(validate_object(o), role) for o in before_releases or ()]
        self.chart_mirror = validate_chart_mirror(chart_mirror)
        self.releases, self.upstream_charts = [], {}
        for release in releases or ():
            release, upstream = mirror_release(validate_release(release), self.chart_mirror)
            self.releases.append(release)
            if upstream:
                self.upstream_charts[release_path(release)] = upstream
        self.after_releases = [_owned(validate_object(o), role) for o in after_releases or ()]
        self.settings = {str(k): v for k, v in (plain(settings) or {}).items()}
        self.node_ports = [dict(p, role=role) for p in plain(list(node_ports or ()))]
        self.host_ports = plain(list(host_ports or ()))
        self.generated_secrets = [self._generated_secret(g) for g in plain(list(generated_secrets or ()))]
        self.pod_security = plain(pod_security or {})
        _require(isinstance(self.pod_security, dict), "role %s: pod_security must map namespaces to levels" % role)
        try:
            for namespace, level in self.pod_security.items():
                check_level(level, "role %s, pod_security of namespace %s" % (role, namespace))
        except FenceError as exc:
            raise DesiredStateError(str(exc))
        seen = {}
        for path, _entry in self.files():
            _require(path not in seen, "role %s: two entries render to %s" % (role, path))
            seen[path] = True

    @classmethod
    def from_part(cls, part, chart_mirror=""):
        """A Plan from one role's part as its tasks/plan.yml builds it (a mapping with PLAN_KEYS)."""
        part = plain(part)
        _require(isinstance(part, dict), "a role's plan must be a mapping, got %r" % (part,))
        unknown = sorted(set(part) - set(PLAN_KEYS))
        _require(not unknown, "plan of role %s: unknown keys %s" % (part.get("role"), ", ".join(unknown)))
        return cls(part.get("role"), releases=part.get("releases") or (),
                   before_releases=part.get("before_releases") or (), after_releases=part.get("after_releases") or (),
                   remote_manifests=part.get("remote_manifests") or (), chart_mirror=chart_mirror,
                   settings=part.get("settings"), node_ports=part.get("node_ports") or (),
                   host_ports=part.get("host_ports") or (), generated_secrets=part.get("generated_secrets") or (),
                   pod_security=part.get("pod_security"))

    def _generated_secret(self, spec):
        _require(isinstance(spec, dict), "role %s: a generated secret must be a mapping" % self.role)
        missing = [k for k in ("namespace", "name", "key", "file", "length") if spec.get(k) in (None, "")]
        _require(not missing, "role %s: generated secret %r lacks %s" % (self.role, spec, ", ".join(missing)))
        _require(self.secret_of(spec) is not None, "role %s: generated secret %s/%s is not one of the role's Secrets"
                 % (self.role, spec["namespace"], spec["name"]))
        return spec

    def secret_of(self, spec):
        """The role's Secret a generated secret ``spec`` fills, or None."""
        for obj in self.objects:
            meta = obj["metadata"]
            if obj["kind"] == "Secret" and meta["name"] == spec["name"] and meta.get("namespace") == spec["namespace"]:
                return obj
        return None

    @property
    def objects(self):
        return self.before_releases + self.after_releases

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
        for phase, objs in (("before_releases", self.before_releases), ("after_releases", self.after_releases)):
            for obj in objs:
                entry = {"role": self.role, "type": "manifest", "phase": phase}
                entry.update(object_ref(obj))
                yield object_path(obj), entry

    def namespaces(self):
        """{namespace: labels} of every namespace this role's entries live in, in order of first use.

        Namespace objects of the role contribute their labels; other namespaces get none.
        """
        found = {}
        for obj in self.objects:
            if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
                found.setdefault(obj["metadata"]["name"], {}).update(obj["metadata"].get("labels") or {})
        for entry in self.releases + self.objects:
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
        for obj in self.objects:
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


class Site(object):
    """Every role's part, checked together: one role per part, one role per release or object,
    one setting per NodePort. ``plans`` are ``Plan`` objects in the site's order.

    ``pod_security_labels`` (POD_SECURITY_LABELS) says whether the site's namespaces carry the Pod
    Security labels of the level their workloads meet: the most permissive level any role names for
    the namespace (``levels`` when given: those of every part planned in the run, not only these).
    The labels go into the namespaces the deploy path creates and into the roles' Namespace objects.
    """

    def __init__(self, plans, pod_security_labels="none", levels=None):
        _require(pod_security_labels in POD_SECURITY_LABELS, "pod_security_labels must be one of %s, got %r"
                 % (", ".join(POD_SECURITY_LABELS), pod_security_labels))
        self.pod_security_mode = pod_security_labels
        self.plans = list(plans)
        self.levels = levels if levels is not None else namespace_levels(
            (plan.role, plan.pod_security) for plan in self.plans)
        if pod_security_labels != "none":
            for plan in self.plans:
                plan.before_releases = [self._labelled(obj) for obj in plan.before_releases]
                plan.after_releases = [self._labelled(obj) for obj in plan.after_releases]
        roles = [plan.role for plan in self.plans]
        twice = sorted({r for r in roles if roles.count(r) > 1})
        _require(not twice, "role(s) %s planned more than once; hand each role's part over once" % ", ".join(twice))
        self.claims = {}
        for plan in self.plans:
            mine = plan_claims(plan, plan.settings)
            check_claims(mine, self.claims)
            self.claims.update(mine)
        problems = node_port_problems(self.node_ports())
        _require(not problems, " ".join(problems))

    @property
    def roles(self):
        return [plan.role for plan in self.plans]

    def node_ports(self):
        return [port for plan in self.plans for port in plan.node_ports]

    def host_ports(self):
        return [claim for plan in self.plans for claim in plan.host_ports]

    def namespace_labels(self, namespace):
        """The Pod Security labels ``namespace`` carries ({} when labels are off or the user owns it)."""
        if self.pod_security_mode == "none" or namespace not in self.levels:
            return {}
        return pod_security_labels(self.levels[namespace])

    def _labelled(self, obj):
        if obj["kind"] != "Namespace" or obj["apiVersion"] != "v1":
            return obj
        extra = self.namespace_labels(obj["metadata"]["name"])
        if not extra:
            return obj
        metadata = dict(obj["metadata"], labels=dict(obj["metadata"].get("labels") or {}, **extra))
        return dict(obj, metadata=metadata)

    def namespaces(self):
        """{namespace: labels} over every plan, in order of first use, with their Pod Security labels."""
        found = {}
        for plan in self.plans:
            for name, labels in plan.namespaces().items():
                found.setdefault(name, {}).update(labels)
        for name, labels in found.items():
            labels.update(self.namespace_labels(name))
        return found

    def namespace_objects(self):
        """Namespace objects for the labelled namespaces of the site that no role renders itself.

        Render mode writes them (the site's part, role SITE_ROLE), so a GitOps user gets the labels
        too; apply mode creates namespaces with the same labels.
        """
        rendered = {obj["metadata"]["name"] for plan in self.plans for obj in plan.objects
                    if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1"}
        objects = []
        for name, labels in self.namespaces().items():
            extra = self.namespace_labels(name)
            if extra and name not in rendered:
                objects.append({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": name, "labels": dict(NAMESPACE_LABELS, **labels)}})
        return objects

    def documents(self):
        docs = {}
        for plan in self.plans:
            docs.update(plan.documents())
        return docs


# ---- claims: which role renders or applies what, and which settings name it ----------------------
# Render paths identify a release or an object in apply mode too, so two roles that would render
# or apply the same release or object are stopped before either does; messages name the
# variables (a plan's ``settings``) behind the names.
def _text_settings(settings):
    return sorted((str(k), v) for k, v in (settings or {}).items() if isinstance(v, str) and v)


def settings_quoted_in(settings, message):
    """Settings whose value appears quoted (as the deploy messages quote names and versions) in ``message``."""
    return [(name, value) for name, value in _text_settings(settings) if repr(value) in message]


def settings_hint(settings, message):
    """' (settings: a='x', b='y')' naming the settings behind a deploy message, or ''."""
    named = settings_quoted_in(settings, message)
    if not named:
        return ""
    return " (set by %s)" % ", ".join("%s=%r" % item for item in named)


def claims_hint(claims, message):
    """' (named by a, b)' for the claimed path a message mentions, or ''."""
    for path in sorted(claims, key=len, reverse=True):
        if path in message and claims[path].get("settings"):
            return " (named by %s)" % ", ".join(claims[path]["settings"])
    return ""


def _describe(entry):
    where = " in namespace %s" % entry["namespace"] if entry.get("namespace") else ""
    if entry.get("type") == "helm_release":
        return "release %s%s" % (entry["release"], where)
    return "%s %s%s" % (entry["kind"], entry["name"], where)


def plan_claims(plan, settings=None):
    """{render path: {role, what, settings}} for every release and object of ``plan``.

    ``settings`` lists the variables whose value is the entry's name or namespace.
    """
    claims = {}
    for path, entry in plan.files():
        parts = {entry.get("release") or entry.get("name"), entry.get("namespace")}
        named = sorted(name for name, value in _text_settings(settings) if value in parts)
        claims[path] = {"role": plan.role, "what": _describe(entry), "settings": named}
    return claims


def check_claims(claims, claimed):
    """DesiredStateError when another role already claims one of ``claims``' paths."""
    for path in sorted(claims):
        mine, other = claims[path], (claimed or {}).get(path)
        if not other or other.get("role") == mine["role"]:
            continue
        fixes = ["%s: %s" % (c["role"], ", ".join(c["settings"])) for c in (mine, other) if c.get("settings")]
        raise DesiredStateError(
            "role %s would also render or apply %s (%s), which role %s does: give one of them another name%s"
            % (mine["role"], mine["what"], path, other.get("role"), " (%s)" % "; ".join(fixes) if fixes else "")
        )


def _entry_key(entry):
    return (entry.get("path") or "", entry.get("url") or "", entry.get("role") or "")


def merge_index(existing, plans, present=True):
    """Return (new index document, stale relative paths) after replacing the entries of ``plans``' roles.

    ``plans`` is a Plan or a list of them. Entries of other roles are kept as they are; a path
    another role owns is a conflict.
    """
    plans = [plans] if isinstance(plans, Plan) else list(plans)
    roles = {plan.role for plan in plans}
    entries = list((existing or {}).get("entries") or [])
    others = [e for e in entries if e.get("role") not in roles]
    mine_before = [e for e in entries if e.get("role") in roles]
    mine_now = [entry for plan in plans for entry in plan.index_entries()] if present else []
    owned = {e.get("path"): e.get("role") for e in others if e.get("path")}
    for entry in mine_now:
        if entry.get("path") in owned:
            raise DesiredStateError(
                "%s is already rendered by role %s; role %s cannot render it too"
                % (entry["path"], owned[entry["path"]], entry["role"])
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


def timeout_seconds(duration):
    """'10m' -> 600: kubernetes.core.k8s takes seconds, kubernetes.core.helm a Go duration."""
    seconds = wait_seconds(str(duration))
    _require(seconds is not None, "wait_timeout must look like 90s, 5m or 1h, got %r" % (duration,))
    return seconds
