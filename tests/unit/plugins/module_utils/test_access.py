"""Unit tests of module_utils/access: deadline and backoff, the kubeconfig as the kubernetes library loads it, service targets, causes."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from ansible_collections.agentgateway.observability.plugins.module_utils import access as agw_access
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    AccessError,
    Deadline,
    Outcome,
    ServiceAccess,
    load_kubeconfig,
    poll,
    proxy_path,
)


class _Clock(object):
    """A fake clock for poll(): sleeping advances monotonic time."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        self.sleeps = []
        monkeypatch.setattr(agw_access.time, "monotonic", lambda: self.now)

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def test_poll_backs_off_exponentially_and_stops_at_the_deadline(monkeypatch):
    clock = _Clock(monkeypatch)
    deadline = Deadline(10)
    calls = []

    def attempt():
        calls.append(clock.now)
        return Outcome(False, "connection_refused", "refused")

    outcome = poll(deadline, attempt, backoff=0.5, max_backoff=4, sleep=clock.sleep)
    assert outcome.cause == "connection_refused" and outcome.attempts == len(calls)
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 4.0] and max(clock.sleeps) <= 4
    assert abs(sum(clock.sleeps) - 10) < 1e-6, "the last pause ends exactly at the deadline, never after"
    assert clock.now - deadline.started == pytest.approx(10)


def test_poll_stops_at_once_for_causes_waiting_cannot_cure(monkeypatch):
    clock = _Clock(monkeypatch)
    for cause in ("dns", "tls", "unauthorized", "apiserver_forbidden", "service_not_found", "config"):
        outcome = poll(Deadline(30), lambda c=cause: Outcome(False, c, "x"), sleep=clock.sleep)
        assert outcome.attempts == 1, cause
    assert clock.sleeps == []


def test_poll_returns_the_first_pass(monkeypatch):
    clock = _Clock(monkeypatch)
    results = iter([Outcome(False, "no_endpoints"), Outcome(False, "expectation"), Outcome(True, saw="ok")])
    outcome = poll(Deadline(30), lambda: next(results), sleep=clock.sleep)
    assert outcome.ok and outcome.attempts == 3 and clock.sleeps == [0.5, 1.0]


def test_deadline_cuts_the_attempt_timeout(monkeypatch):
    clock = _Clock(monkeypatch)
    deadline = Deadline(3)
    assert deadline.timeout(10) == 3
    clock.now += 1.5
    assert deadline.timeout(10) == pytest.approx(1.5)
    clock.now += 1.0
    assert deadline.timeout(10) == 1.0, "never below one second: at most one second past the deadline"
    clock.now += 5
    assert deadline.timeout(10) == 1.0 and deadline.expired(), "a check after the deadline still gets one attempt"
    assert deadline.timeout(0.3) == 0.3


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _ca(tmp_path):
    """A real CA certificate in PEM (the kubernetes library loads it when it builds the configuration)."""
    import datetime  # pylint: disable=import-outside-toplevel

    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _kubeconfig(tmp_path, user, cluster=None, name="kc.yaml", as_json=False, context="dev"):
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
           "clusters": [{"name": "c1", "cluster": dict({"server": "https://10.0.0.1:6443/prefix/",
                                                        "certificate-authority-data": _b64(_ca(tmp_path))},
                                                       **(cluster or {}))}],
           "users": [{"name": "u1", "user": user}],
           "contexts": [{"name": "dev", "context": {"cluster": "c1", "user": "u1"}},
                        {"name": "other", "context": {"cluster": "c1", "user": "u1"}}]}
    path = tmp_path / name
    path.write_text(json.dumps(doc) if as_json else yaml.safe_dump(doc))
    return str(path)


def test_the_kubernetes_library_loads_the_kubeconfig_client_certificate(tmp_path):
    target = load_kubeconfig(_kubeconfig(tmp_path, {"client-certificate-data": _b64("CERT"),
                                                    "client-key-data": _b64("KEY")}))
    assert target.server == "https://10.0.0.1:6443/prefix"
    assert open(target.ca_file).read().startswith("-----BEGIN CERTIFICATE-----")
    assert open(target.client_cert).read() == "CERT" and open(target.client_key).read() == "KEY"
    assert target.credential_kind() == "client certificate" and target.headers() == {}


def test_token_file_relative_paths_json_and_basic_auth(tmp_path):
    (tmp_path / "token").write_text("abc123\n")
    target = load_kubeconfig(_kubeconfig(tmp_path, {"tokenFile": str(tmp_path / "token")}, as_json=True))
    assert target.headers() == {"Authorization": "Bearer abc123"} and target.credential_kind() == "bearer token"
    basic = load_kubeconfig(_kubeconfig(tmp_path, {"username": "admin", "password": "pw"}, name="basic.yaml"))
    assert basic.headers()["Authorization"] == "Basic " + _b64("admin:pw") and basic.credential_kind() == "basic auth"


def test_kubeconfig_context_selection_and_errors(tmp_path, monkeypatch):
    path = _kubeconfig(tmp_path, {"token": "t"})
    assert load_kubeconfig(path, "other").context == "other"
    with pytest.raises(AccessError, match="context 'nope' is not in kubeconfig .*it has: dev, other"):
        load_kubeconfig(path, "nope")
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "nope")
    with pytest.raises(AccessError, match="context 'nope' is not in kubeconfig"):
        load_kubeconfig(path)
    with pytest.raises(AccessError, match="does not exist.*agw_obs_kubeconfig"):
        load_kubeconfig(str(tmp_path / "absent"))
    with pytest.raises(AccessError, match="tls-server-name"):
        load_kubeconfig(_kubeconfig(tmp_path, {"token": "t"}, cluster={"tls-server-name": "x"}, name="t.yaml"), "dev")


def test_exec_credential_plugin_runs_through_the_library_and_its_token_is_used(tmp_path):
    script = tmp_path / "cred.sh"
    script.write_text('#!/bin/sh\necho "$KUBERNETES_EXEC_INFO" > "%s"\n'
                      'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
                      '"status":{"token":"%%s"}}\' "$TOKEN_FROM_ENV"\n' % (tmp_path / "info.json"))
    script.chmod(0o755)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "env": [{"name": "TOKEN_FROM_ENV", "value": "exec-token"}]}}
    target = load_kubeconfig(_kubeconfig(tmp_path, user))
    assert target.headers() == {"Authorization": "Bearer exec-token"}
    assert json.loads((tmp_path / "info.json").read_text())["kind"] == "ExecCredential"
    script.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    with pytest.raises(AccessError, match="gave no credentials: exec: process returned 3. broken"):
        load_kubeconfig(_kubeconfig(tmp_path, user, name="broken.yaml"))


def test_proxy_path_quotes_every_part():
    assert proxy_path("monitoring", "prometheus-server", 80) == \
        "/api/v1/namespaces/monitoring/services/http:prometheus-server:80/proxy"
    assert proxy_path("ns", "svc", "web", "https") == "/api/v1/namespaces/ns/services/https:svc:web/proxy"
    assert proxy_path("a/b", "c:d", 1) == "/api/v1/namespaces/a%2Fb/services/http:c%3Ad:1/proxy"


def test_service_targets_and_their_settings_errors(tmp_path):
    kube = load_kubeconfig(_kubeconfig(tmp_path, {"token": "t"}))
    access = ServiceAccess({"access": "proxy", "namespace": "monitoring", "name": "grafana", "port": "80"}, {},
                           label="grafana", kube=kube)
    assert access.base_url == "https://10.0.0.1:6443/prefix/api/v1/namespaces/monitoring/services/http:grafana:80/proxy"
    assert access.url("/api/health").endswith("/proxy/api/health") and access.via_proxy
    assert "through the API server proxy" in access.describe()
    assert ServiceAccess({"access": "nodeport", "host_port": 30090}, {"node_address": "10.1.1.1"}).base_url == \
        "http://10.1.1.1:30090"
    assert ServiceAccess({"url": "https://prom.example/"}, {}).base_url == "https://prom.example"
    for target, settings, needle in (
            ({"access": "url"}, {}, "needs the service's base URL"),
            ({"access": "nodeport"}, {}, "needs the host port"),
            ({"access": "proxy", "name": "x", "port": "1"}, {}, "needs the Service's namespace"),
            ({"access": "bogus"}, {}, "use one of nodeport, proxy, url"),
            ({"url": "ftp://x"}, {}, "is not an http(s) URL"),
            ({"access": "proxy", "namespace": "n", "name": "x", "port": "1"}, {"username": "admin"},
             "removes the Authorization header")):
        with pytest.raises(AccessError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            ServiceAccess(target, settings, kube=kube)


class _Resp(object):
    def __init__(self, status, body, content_type="application/json"):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = {"content-type": content_type}

    def text(self):
        return self.body.decode()


def _status(code, message, kind=None):
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    if kind:
        body["details"] = {"name": "x", "kind": kind}
    return json.dumps(body)


@pytest.mark.parametrize("status,body,via_proxy,cause", [
    (401, _status(401, "Unauthorized"), True, "apiserver_unauthorized"),
    (403, _status(403, 'services "x" is forbidden: User "u" cannot get resource "services/proxy"'), True,
     "apiserver_forbidden"),
    (404, _status(404, 'services "x" not found', "services"), True, "service_not_found"),
    (503, _status(503, 'no endpoints available for service "x"'), True, "no_endpoints"),
    (503, _status(503, 'no service port 81 found for service "x"'), True, "service_port_not_found"),
    (503, _status(503, "error trying to reach service: dial tcp 10.0.0.5:80: connect: connection refused"), True,
     "upstream_unreachable"),
    (404, '{"message": "Not found"}', True, "not_found"),  # the service's own 404 passes the proxy as it is
    (401, _status(401, "Unauthorized"), False, "unauthorized"),  # without the proxy a Status is just an answer
    (403, "denied", False, "forbidden"),
    (502, "bad gateway", False, "server_error"),
    (429, "slow down", False, "rate_limited"),
    (400, "bad", False, "client_error"),
])
def test_classify_response(status, body, via_proxy, cause):
    assert agw_access.classify_response(_Resp(status, body), via_proxy)[0] == cause
