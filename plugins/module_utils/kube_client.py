# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach the Kubernetes API server the way kubernetes.core does, and say why when it fails.

The collection's one Kubernetes client: the cluster modules (``cluster_preflight``,
``managed_namespace``) and the API server proxy path of the verification modules (``access``)
all load their connection through ``configuration`` with the ``kubernetes`` library, as
kubernetes.core does. The same connection settings as the deploy path: a kubeconfig file and a
context. Empty means what kubernetes.core uses: ``K8S_AUTH_KUBECONFIG`` / ``K8S_AUTH_CONTEXT``,
then ``~/.kube/config`` and its current context, then the in-cluster service account.

Every failure is a ``KubeError`` with a stable ``cause`` (``CAUSES``), so callers (and the roles
that call them) can name the setting to fix instead of passing on a stack trace.
"""

from __future__ import annotations

import os
import traceback

try:
    import kubernetes
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:  # reported by the modules with the fix
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
    ApiException = Exception  # pylint: disable=invalid-name

CAUSES = (
    "kubernetes_library",  # the Python kubernetes package is missing where the module runs
    "kubeconfig",  # the kubeconfig file is missing or unreadable
    "context",  # the context is not in the kubeconfig
    "unreachable",  # connection refused, DNS, timeout: nothing answers at the server address
    "tls",  # the server's certificate does not verify against the kubeconfig's CA
    "unauthorized",  # 401: the credentials are not accepted
    "forbidden",  # 403: authenticated, but not allowed
    "api",  # any other API error
)

KUBE_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "request_timeout": {"type": "float", "default": 10.0},
}

# Namespaces created by the collection carry this label, and only those are ever removed.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "agentgateway.observability"


class KubeError(Exception):
    """A failure to reach or use the API server; ``cause`` is one of ``CAUSES``."""

    def __init__(self, cause, message):
        super().__init__(message)
        self.cause = cause
        self.message = message


def resolve_kubeconfig(kubeconfig=None):
    """The kubeconfig path kubernetes.core would use, or None for in-cluster config."""
    path = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if not path:
        path = os.path.expanduser("~/.kube/config")
        if not os.path.exists(path) and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return None
    return os.path.expanduser(path)


def configuration(kubeconfig=None, context=None):
    """A ``kubernetes.client.Configuration`` for the given kubeconfig and context, the way kubernetes.core makes one.

    The ``kubernetes`` library reads the kubeconfig: client certificates, tokens and token files,
    basic auth, ``exec`` and ``auth-provider`` credential plugins, the cluster's CA, ``proxy-url`` and
    ``tls-server-name``; with no kubeconfig in the usual places and ``KUBERNETES_SERVICE_HOST`` set,
    the pod's service account (in-cluster config).
    """
    if not HAS_KUBERNETES:
        raise KubeError("kubernetes_library", "the Python library 'kubernetes' is not installed for %s" % _python())
    context = context or os.environ.get("K8S_AUTH_CONTEXT") or None
    path = resolve_kubeconfig(kubeconfig)
    config = k8s_client.Configuration()
    if path is None:
        try:
            k8s_config.load_incluster_config(client_configuration=config)
        except Exception as exc:  # pylint: disable=broad-except
            raise KubeError("kubeconfig", "no kubeconfig, and the in-cluster service account cannot be used: %s" % exc)
        return config
    if not os.path.isfile(path):
        raise KubeError("kubeconfig", "kubeconfig %s does not exist" % path)
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=path)
    except Exception as exc:  # pylint: disable=broad-except
        raise KubeError("kubeconfig", "kubeconfig %s cannot be read: %s" % (path, exc))
    names = sorted(c.get("name") for c in contexts or [])
    if context and context not in names:
        raise KubeError("context", "context %r is not in kubeconfig %s (it has: %s)"
                        % (context, path, ", ".join(names) or "none"))
    if not context and not current:
        raise KubeError("context", "kubeconfig %s has no current-context; name one of: %s"
                        % (path, ", ".join(names) or "none"))
    try:
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=config,
                                    persist_config=False)
    except Exception as exc:  # pylint: disable=broad-except
        raise KubeError("kubeconfig", "kubeconfig %s, context %s cannot be used: %s"
                        % (path, context or (current or {}).get("name"), exc))
    return config


def authorization(config):
    """The ``Authorization`` header value the configuration sends (a token or basic auth), or None.

    Calls the library's refresh hook first, so an expired exec or auth-provider token is renewed.
    """
    return config.get_api_key_with_prefix("BearerToken") or None


def api_client(kubeconfig=None, context=None):
    """A ``kubernetes.client.ApiClient`` for the given kubeconfig and context."""
    config = configuration(kubeconfig, context)  # raises first when the library is missing
    return k8s_client.ApiClient(config)


def context_name(kubeconfig=None, context=None):
    """The context ``configuration`` uses: ``context``, K8S_AUTH_CONTEXT, or the kubeconfig's current one."""
    name = context or os.environ.get("K8S_AUTH_CONTEXT")
    path = resolve_kubeconfig(kubeconfig)
    if name or path is None or not HAS_KUBERNETES:
        return name or "(in-cluster)"
    try:
        return (k8s_config.list_kube_config_contexts(config_file=path)[1] or {}).get("name") or "(current)"
    except Exception:  # pylint: disable=broad-except
        return "(current)"


def _python():
    import sys  # pylint: disable=import-outside-toplevel

    return sys.executable


def explain(exc, server=None):
    """Map an exception from the kubernetes client to a ``KubeError``."""
    where = " at %s" % server if server else ""
    if isinstance(exc, KubeError):
        return exc
    if HAS_KUBERNETES and isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        reason = (getattr(exc, "reason", "") or "").strip()
        if status == 401:
            return KubeError("unauthorized", "the API server%s refused the credentials (401 %s)" % (where, reason))
        if status == 403:
            return KubeError("forbidden", "the API server%s forbids this (403): %s" % (where, _body_message(exc)))
        if status == 0 or status is None:
            return KubeError("unreachable", "no answer from the API server%s: %s" % (where, reason or exc))
        return KubeError("api", "the API server%s answered %s: %s" % (where, status, _body_message(exc)))
    text = "%s" % exc
    lowered = text.lower()
    if "certificate verify failed" in lowered or "ssl" in type(exc).__name__.lower() or "sslerror" in lowered:
        return KubeError("tls", "TLS to the API server%s failed: %s" % (where, _short(text)))
    return KubeError("unreachable", "the API server%s cannot be reached: %s" % (where, _short(text)))


def _body_message(exc):
    import json  # pylint: disable=import-outside-toplevel

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except Exception:  # pylint: disable=broad-except
        return getattr(exc, "reason", "") or "%s" % exc


def _short(text):
    """The useful tail of urllib3's nested retry messages."""
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip().rstrip(")").strip()[:300]


def server_version(client, timeout=10.0):
    """The API server's ``gitVersion`` (GET /version), or a ``KubeError``."""
    try:
        info = k8s_client.VersionApi(client).get_code(_request_timeout=timeout)
    except Exception as exc:  # pylint: disable=broad-except
        raise explain(exc, client.configuration.host)
    return info.git_version


def library_version():
    return getattr(kubernetes, "__version__", "unknown") if HAS_KUBERNETES else None


# What a namespace holds on its own, without anybody creating it: objects Kubernetes adds to every
# namespace, and kinds whose objects controllers keep in step with others (endpoints of Services,
# events). A namespace holding nothing else is empty.
_AUTOMATIC = {
    ("ConfigMap", "kube-root-ca.crt"),
    ("ServiceAccount", "default"),
}
_IGNORED_KINDS = {"Event", "Endpoints", "EndpointSlice", "Lease", "LocalSubjectAccessReview"}


def namespace_leftovers(client, namespace, timeout=10.0):
    """``Kind/name`` of every object in ``namespace`` that somebody created and that is not going away.

    Objects with an owner (garbage-collected with it) or a deletion timestamp are going away.
    Every namespaced kind the API server lists is looked at (built-in and custom resources).
    """
    from kubernetes.dynamic import DynamicClient  # pylint: disable=import-outside-toplevel
    from kubernetes.dynamic.resource import ResourceList  # pylint: disable=import-outside-toplevel

    try:
        dynamic = DynamicClient(client)
        found = []
        seen = set()
        for resource in dynamic.resources.search():
            if isinstance(resource, ResourceList):
                continue
            if not resource.namespaced or "list" not in (resource.verbs or []) or "/" in resource.name:
                continue
            key = (resource.group, resource.kind)
            if key in seen or resource.kind in _IGNORED_KINDS or resource.kind.endswith("List"):
                continue
            seen.add(key)
            try:
                items = resource.get(namespace=namespace, _request_timeout=timeout).items or []
            except ApiException as exc:
                if exc.status in (404, 405):  # a kind removed a moment ago (its CRD went with the stack)
                    continue
                raise
            for item in items:
                meta = item.metadata
                if (resource.kind, meta.name) in _AUTOMATIC or meta.ownerReferences or meta.deletionTimestamp:
                    continue
                found.append("%s/%s" % (resource.kind, meta.name))
        return sorted(found)
    except Exception as exc:  # pylint: disable=broad-except
        raise explain(exc, client.configuration.host)


def rest(client, method, path, body=None, query=None, timeout=10.0):
    """The JSON document of one API request (None for 404), without the library's typed models.

    The typed APIs (``CoreV1Api`` and the like) import and validate their models on the first call,
    which costs close to a second per module run with kubernetes 37; a module that reads and writes a
    few plain objects (site_lock) asks for plain JSON instead. Other errors raise ``ApiException``.
    With a library older than the pinned one (no ``param_serialize``), the typed client's generic
    ``call_api`` is used (that path is not exercised by the tests here, which run the pinned 37.0.2).
    """
    import json  # pylint: disable=import-outside-toplevel

    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    query_params = list((query or {}).items())
    if hasattr(client, "param_serialize"):
        method, url, headers, body, post = client.param_serialize(method, path, query_params=query_params,
                                                                  header_params=headers, body=body,
                                                                  auth_settings=["BearerToken"])
        response = client.call_api(method, url, headers, body, post, _request_timeout=timeout)
        response.read()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else {}
    try:  # older kubernetes libraries
        return client.call_api(path, method, query_params=query_params, header_params=headers, body=body,
                               response_type="object", auth_settings=["BearerToken"], _return_http_data_only=True,
                               _request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
