# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the controller reaches a service of the stack (``agw_obs_access``), over ``http_client``.

Three ways, one interface (``ServiceAccess``):

* ``nodeport``: ``<scheme>://<node_address>:<host_port>``, the host port a kind cluster maps to a
  NodePort (``localhost`` by default);
* ``proxy``: the Kubernetes API server's service proxy,
  ``<server>/api/v1/namespaces/<ns>/services/<scheme>:<name>:<port>/proxy/<path>``, with the
  connection the ``kubernetes`` library loads from the kubeconfig (kube_client.configuration: client
  certificates, tokens, basic auth, exec and auth-provider plugins, the CA, proxy-url, or the pod's
  service account), as kubernetes.core uses it. Works on any cluster, with no NodePort and no
  port-forward;
* ``url``: an explicit base URL per service.

Every request runs under one ``Deadline``: each attempt's timeout is cut to what is left, and
``poll`` retries with exponential backoff until the answer is what the caller wants or the
deadline is reached. Failures are mapped to a *cause* (``classify``): connection refused, DNS,
TLS, timeout, 401, 403, 404, 5xx, and, through the API server proxy, the API server's own answers
(no endpoints, service not found, RBAC, unreachable pod) told apart from the service's.

Facts about the API server used here, read from Kubernetes v1.36.1 and checked against a real
kube-apiserver v1.36.1 (tests/functional/test_access_controlplane.py):

* ``pkg/registry/core/service/storage/storage.go`` ``ResourceLocation``: a port number is looked up
  among the Service's ports (``no service port N found`` otherwise, 503); then the Endpoints
  object of the same name (404 ``services "x" not found`` when there is none, 503 ``no endpoints
  available for service`` when it has no ready address); only addresses that are Pods with that
  IP are used;
* endpoint addresses may not be loopback addresses (validation), and dial errors come back as
  503 ``error trying to reach service: <error>``;
* ``k8s.io/apiserver`` ``filters/authentication.go``: after authenticating the caller, the API
  server *removes* the ``Authorization`` header, so a service's own basic or bearer credentials
  cannot pass through the proxy (``grafana_info`` logs in for a session cookie instead).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse

from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import (
    HttpClient,
    HttpError,
)

ACCESS_MODES = ("nodeport", "proxy", "url")
DEFAULT_USER_AGENT = "agentgateway.observability"

# Causes a later attempt can cure (the service is starting, data has not arrived yet).
RETRYABLE_CAUSES = frozenset((
    "connection_refused", "connection_reset", "connection", "timeout", "server_error", "not_found",
    "rate_limited", "no_endpoints", "upstream_unreachable", "expectation", "invalid_response",
    "apiserver_error",
))


class AccessError(Exception):
    """Settings that cannot work (bad kubeconfig, missing URL); the message names the setting."""


# ---- deadline ------------------------------------------------------------------------------------
class Deadline(object):
    """One time budget for all attempts of a check (seconds from now)."""

    def __init__(self, seconds):
        self.seconds = float(seconds)
        self.started = time.monotonic()
        self.end = self.started + self.seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end

    def elapsed(self):
        return time.monotonic() - self.started

    def timeout(self, per_attempt):
        """The timeout of the next attempt: ``per_attempt`` cut to what is left.

        Never below one second (or ``per_attempt`` when smaller): a check that starts after an earlier
        check of the same module used up the deadline still gets one fair attempt, so a slow but working
        service is not reported as a timeout because of its neighbour.
        """
        return max(min(float(per_attempt), 1.0), min(float(per_attempt), self.remaining()))


def poll(deadline, attempt, backoff=0.5, max_backoff=5.0, retryable=RETRYABLE_CAUSES, sleep=time.sleep):
    """Call ``attempt()`` until it passes, fails for good, or the deadline is reached.

    ``attempt()`` returns an ``Outcome``. Retries wait ``backoff * 2**n`` seconds (at most
    ``max_backoff``, never past the deadline). The last outcome is returned with ``attempts`` set.
    """
    tries = 0
    while True:
        tries += 1
        outcome = attempt()
        outcome.attempts = tries
        if outcome.ok or outcome.cause not in retryable:
            return outcome
        remaining = deadline.remaining()
        if remaining <= 0:
            return outcome
        sleep(min(backoff * (2 ** (tries - 1)), max_backoff, remaining))
        if deadline.expired():
            # One last attempt at the deadline would only time out at once: stop here.
            return outcome


class Outcome(object):
    """The result of one attempt: ``ok``, or a ``cause`` and what was seen."""

    __slots__ = ("ok", "cause", "saw", "data", "status", "attempts", "detail")

    def __init__(self, ok, cause=None, saw="", data=None, status=None, detail=None):
        self.ok = ok
        self.cause = cause
        self.saw = saw
        self.data = data
        self.status = status
        self.attempts = 1
        self.detail = detail


# ---- kubeconfig ----------------------------------------------------------------------------------
class KubeTarget(object):
    """The API server and credentials of one kubeconfig context, as the ``kubernetes`` library loads them.

    The library reads the kubeconfig (client certificates, tokens, basic auth, exec and auth-provider
    plugins, the CA, proxy-url) or the in-cluster service account, exactly as kubernetes.core does;
    this class hands its result to the collection's HTTP client, which keeps the error causes the
    verification reports (connection refused, DNS, TLS, timeouts, the API server's own answers).
    """

    def __init__(self, config, path=None, context=None):
        self.config = config
        self.path = path
        self.context = context or "(current)"
        self.server = (config.host or "").rstrip("/")
        self.ca_file = config.ssl_ca_cert or None
        self.insecure = not config.verify_ssl
        self.client_cert = config.cert_file or None
        self.client_key = config.key_file or None
        self.proxy_url = config.proxy or None
        self.tls_server_name = getattr(config, "tls_server_name", None)

    def authorization(self):
        """The Authorization header (refreshed by the library when its exec or auth-provider token expired).

        Stripped: the library keeps the line break of a tokenFile (client-go trims it), which no HTTP
        header may carry.
        """
        from ansible_collections.agentgateway.observability.plugins.module_utils.kube_client import (  # noqa: E501 pylint: disable=import-outside-toplevel
            authorization,
        )

        header = authorization(self.config)
        return header.strip() if header else None

    def credential_kind(self):
        if self.client_cert:
            return "client certificate"
        header = self.authorization() or ""
        if header.lower().startswith("bearer "):
            return "bearer token"
        if header.lower().startswith("basic "):
            return "basic auth"
        return "no credentials"

    def headers(self):
        header = self.authorization()
        return {"Authorization": header} if header else {}

    def client(self, timeout=10.0, user_agent=DEFAULT_USER_AGENT, proxy_url=None):
        return HttpClient(timeout=timeout, headers=self.headers(), validate_certs=not self.insecure,
                          ca_path=self.ca_file, client_cert=self.client_cert, client_key=self.client_key,
                          user_agent=user_agent, proxy_url=proxy_url or self.proxy_url)

    def close(self):
        """Nothing to remove: the library keeps its credential files for the process and removes them at exit."""


class _LibraryErrors(logging.Handler):
    """The errors the kubernetes library logs while it loads a kubeconfig (a failed exec plugin)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage().strip())


def load_kubeconfig(path=None, context=None):
    """The ``KubeTarget`` of ``context`` (default: the current one) in the kubeconfig at ``path``.

    Empty ``path`` means what kubernetes.core uses (K8S_AUTH_KUBECONFIG, KUBECONFIG, ~/.kube/config,
    then the in-cluster service account).
    """
    # Imported here: the url and nodeport access never need the kubernetes library (a second of import).
    from ansible_collections.agentgateway.observability.plugins.module_utils.kube_client import (  # noqa: E501 pylint: disable=import-outside-toplevel
        KubeError,
        configuration,
        context_name,
        resolve_kubeconfig,
    )

    plugin_errors = _LibraryErrors()
    logging.getLogger().addHandler(plugin_errors)
    try:
        config = configuration(path, context)
    except KubeError as exc:
        raise AccessError("%s (set agw_obs_kubeconfig / agw_obs_kube_context, or kubeconfig / context)" % exc.message)
    finally:
        logging.getLogger().removeHandler(plugin_errors)
    target = KubeTarget(config, resolve_kubeconfig(path), context_name(path, context))
    if plugin_errors.messages and target.credential_kind() == "no credentials":
        # the library logs a failed exec or auth-provider plugin and goes on without credentials
        raise AccessError("the credential plugin of context %s gave no credentials: %s"
                          % (target.context, "; ".join(plugin_errors.messages)))
    if not target.server.startswith(("https://", "http://")):
        raise AccessError("the kubeconfig %s has no http(s) server URL for context %s" % (target.path, target.context))
    if target.tls_server_name:
        raise AccessError("the cluster of context %s sets tls-server-name, which the service proxy access of this "
                          "collection does not support; use a server URL whose host name is in the certificate"
                          % target.context)
    return target


# ---- service access ------------------------------------------------------------------------------
def proxy_path(namespace, name, port, scheme="http"):
    """``/api/v1/namespaces/<ns>/services/<scheme>:<name>:<port>/proxy`` (no trailing slash)."""
    quote = urllib.parse.quote
    return "/api/v1/namespaces/%s/services/%s:%s:%s/proxy" % (
        quote(namespace, safe=""), quote(scheme, safe=""), quote(name, safe=""), quote(str(port), safe=""))


class ServiceAccess(object):
    """One service of the stack, reached the way ``target['access']`` says.

    ``target``: ``access`` (nodeport/proxy/url), ``url`` (url), ``host_port`` and ``node_address``
    (nodeport), ``namespace``, ``name``, ``port``, ``scheme`` (proxy; scheme also for nodeport).
    ``settings``: ``timeout``, ``validate_certs``, ``ca_path``, ``client_cert``, ``client_key``,
    ``proxy_url``, ``username``, ``password``, ``bearer_token``, ``headers``, ``kubeconfig``,
    ``context`` (the last two for proxy).
    """

    def __init__(self, target, settings, label=None, kube=None):
        self.target = dict(target or {})
        self.settings = dict(settings or {})
        self.mode = self.target.get("access") or self.settings.get("access") or "url"
        self.label = label or self.target.get("name") or "service"
        self.kube = None
        self._own_kube = False
        if self.mode not in ACCESS_MODES:
            raise AccessError("access %r for %s: use one of %s" % (self.mode, self.label, ", ".join(ACCESS_MODES)))
        timeout = float(self.settings.get("timeout") or 10.0)
        extra_headers = dict(self.settings.get("headers") or {})
        if self.mode == "proxy":
            for field in ("namespace", "name", "port"):
                if self.target.get(field) in (None, ""):
                    raise AccessError("%s: access proxy needs the Service's %s" % (self.label, field))
            if kube is None:
                kube = load_kubeconfig(self.settings.get("kubeconfig"), self.settings.get("context"))
                self._own_kube = True
            self.kube = kube
            if self.settings.get("bearer_token") or self.settings.get("username"):
                raise AccessError(
                    "%s: service credentials cannot pass the API server proxy, which removes the Authorization "
                    "header after it authenticated the kubeconfig user; use access url or nodeport for this service"
                    % self.label)
            self.base_url = kube.server + proxy_path(self.target["namespace"], self.target["name"],
                                                     self.target["port"], self.target.get("scheme") or "http")
            self.client = kube.client(timeout=timeout, proxy_url=self.settings.get("proxy_url"))
            self.client.headers.update(extra_headers)
        else:
            if self.mode == "url":
                url = (self.target.get("url") or "").strip()
                if not url:
                    raise AccessError("%s: access url needs the service's base URL" % self.label)
            else:
                port = self.target.get("host_port")
                if not port:
                    raise AccessError("%s: access nodeport needs the host port mapped to the NodePort" % self.label)
                url = "%s://%s:%s" % (self.target.get("scheme") or "http",
                                      self.target.get("node_address") or self.settings.get("node_address")
                                      or "localhost", port)
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise AccessError("%s: %r is not an http(s) URL" % (self.label, url))
            self.base_url = url.rstrip("/")
            headers = dict(extra_headers)
            if self.settings.get("bearer_token"):
                headers["Authorization"] = "Bearer " + self.settings["bearer_token"]
            self.client = HttpClient(timeout=timeout, headers=headers,
                                     validate_certs=self.settings.get("validate_certs", True),
                                     ca_path=self.settings.get("ca_path"),
                                     client_cert=self.settings.get("client_cert"),
                                     client_key=self.settings.get("client_key"),
                                     username=self.settings.get("username") or None,
                                     password=self.settings.get("password"),
                                     proxy_url=self.settings.get("proxy_url") or None,
                                     user_agent=DEFAULT_USER_AGENT)
        self.timeout = timeout

    @property
    def via_proxy(self):
        return self.mode == "proxy"

    def url(self, path):
        if "://" in path:
            return path
        return self.base_url + "/" + path.lstrip("/")

    def describe(self):
        """One line for reports: what is reached, and how."""
        if self.mode == "proxy":
            return "Service %s/%s port %s through the API server proxy %s (context %s)" % (
                self.target["namespace"], self.target["name"], self.target["port"], self.kube.server,
                self.kube.context)
        if self.mode == "nodeport":
            return "%s (host port %s mapped to a NodePort)" % (self.base_url, self.target.get("host_port"))
        return self.base_url

    def request(self, method, path, deadline=None, **kwargs):
        """One attempt; returns a ``Response`` or raises ``HttpError`` (timeout cut to the deadline)."""
        if deadline is not None:
            kwargs.setdefault("timeout", deadline.timeout(self.timeout))
        kwargs.setdefault("retries", 0)
        return self.client.request(method, self.url(path), **kwargs)

    def attempt(self, method, path, deadline=None, accept=None, **kwargs):
        """One attempt as an ``Outcome``: ok for 2xx (or ``accept`` statuses), else a classified cause."""
        try:
            response = self.request(method, path, deadline=deadline, **kwargs)
        except HttpError as exc:
            cause, saw = classify_error(exc)
            return Outcome(False, cause, saw)
        if (accept and response.status in accept) or (not accept and 200 <= response.status < 300):
            return Outcome(True, saw="HTTP %d" % response.status, data=response, status=response.status)
        cause, saw = classify_response(response, self.via_proxy)
        return Outcome(False, cause, saw, data=response, status=response.status)

    def close(self):
        self.client.close()
        if self._own_kube and self.kube is not None:
            self.kube.close()


# ---- classification ------------------------------------------------------------------------------
_ERROR_CAUSES = {
    "connection_refused": "connection_refused",
    "connection_reset": "connection_reset",
    "timeout": "timeout",
    "dns": "dns",
    "tls": "tls",
    "connection": "connection",
    "invalid_url": "invalid_url",
    "invalid_response": "invalid_response",
}


def classify_error(exc):
    """(cause, what was seen) of an ``HttpError`` raised before an answer arrived."""
    return _ERROR_CAUSES.get(exc.kind, "connection"), exc.message


def _excerpt(text, limit=300):
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def apiserver_status(response):
    """The API server's own ``Status`` object in an error answer, or None (the service answered)."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1":
        return body
    return None


def classify_response(response, via_proxy=False):
    """(cause, what was seen) of an answer with an error status."""
    status = response.status
    text = response.text() if response.body else ""
    saw = "HTTP %d %s" % (status, _excerpt(text, 200))
    if via_proxy:
        st = apiserver_status(response)
        if st is not None:
            message = st.get("message") or ""
            saw = "the API server answered %d: %s" % (status, message)
            if status == 401:
                return "apiserver_unauthorized", saw
            if status == 403:
                return "apiserver_forbidden", saw
            if status == 404 and (st.get("details") or {}).get("kind") == "services":
                return "service_not_found", saw
            if status == 503 and message.startswith("no endpoints available"):
                return "no_endpoints", saw
            if status == 503 and message.startswith("no service port"):
                return "service_port_not_found", saw
            if "error trying to reach service" in message:
                return "upstream_unreachable", saw
            if status == 400 and "address not allowed" in message:
                return "upstream_unreachable", saw
            return "apiserver_error", saw
    if status == 401:
        return "unauthorized", saw
    if status == 403:
        return "forbidden", saw
    if status == 404:
        return "not_found", saw
    if status == 429:
        return "rate_limited", saw
    if status >= 500:
        return "server_error", saw
    return "client_error", saw


# ---- module plumbing -----------------------------------------------------------------------------
def service_suboptions():
    """Argument spec of a ``service`` (doc fragment ``agentgateway.observability.access.service``)."""
    return dict(
        access=dict(type="str", choices=list(ACCESS_MODES)),
        url=dict(type="str"),
        host_port=dict(type="int"),
        node_address=dict(type="str"),
        namespace=dict(type="str"),
        name=dict(type="str"),
        port=dict(type="str"),
        scheme=dict(type="str", choices=["http", "https"], default="http"),
    )


def access_argument_spec():
    """Argument spec of the doc fragment ``agentgateway.observability.access``."""
    return dict(
        access=dict(type="str", choices=list(ACCESS_MODES), default="url"),
        node_address=dict(type="str", default="localhost"),
        kubeconfig=dict(type="path"),
        context=dict(type="str"),
        timeout=dict(type="float", default=10.0),
        deadline=dict(type="float", default=30.0),
        backoff=dict(type="float", default=0.5),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        proxy_url=dict(type="str", no_log=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        bearer_token=dict(type="str", no_log=True),
        headers=dict(type="dict", default={}),
        fail_on_error=dict(type="bool", default=True),
    )


SETTING_KEYS = ("access", "node_address", "kubeconfig", "context", "timeout", "validate_certs", "ca_path",
                "client_cert", "client_key", "proxy_url", "username", "password", "bearer_token", "headers")


class Services(object):
    """Opens ``ServiceAccess`` objects for one module run; the kubeconfig is read once."""

    def __init__(self, params):
        self.settings = {key: params.get(key) for key in SETTING_KEYS}
        self._kube = None
        self._opened = []
        self._lock = threading.Lock()

    def kube(self):
        with self._lock:
            if self._kube is None:
                self._kube = load_kubeconfig(self.settings.get("kubeconfig"), self.settings.get("context"))
            return self._kube

    def open(self, target, label, **overrides):
        """A ``ServiceAccess`` for ``target``; ``overrides`` replace settings (per-check credentials)."""
        settings = dict(self.settings)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        mode = (target or {}).get("access") or settings.get("access") or "url"
        kube = self.kube() if mode == "proxy" else None
        access = ServiceAccess(target, settings, label=label, kube=kube)
        self._opened.append(access)
        return access

    def close(self):
        for access in self._opened:
            access.client.close()
        if self._kube is not None:
            self._kube.close()
