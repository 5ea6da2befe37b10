"""A real Kubernetes control plane with no nodes, on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager.

The way controller-runtime's envtest tests against Kubernetes: the upstream programs (built by
``make setup`` from their pinned Go modules into .cache/tools/bin), real storage, real admission
and validation, real namespace deletion and garbage collection. No kubelet and no scheduler, so
no pod ever runs: Deployments get their ReplicaSets and Pods stay Pending.

Every run gets its own ports (picked at run time), certificates, service-account key and
kubeconfig in one folder; the processes are stopped by the PIDs recorded there.

By hand (the same code the tests use)::

    .venv/bin/python tests/support/controlplane.py start --dir /tmp/cp   # prints the kubeconfig path
    export KUBECONFIG=/tmp/cp/kubeconfig
    .venv/bin/python tests/support/controlplane.py stop --dir /tmp/cp
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

if __package__ in (None, ""):  # run as a script: make `support` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from support.services import free_port  # noqa: E402  pylint: disable=wrong-import-position
from support.tools import tool  # noqa: E402  pylint: disable=wrong-import-position

CONTEXT = "agw-obs-controlplane"
STATE_FILE = "controlplane.json"
SERVICE_CIDR = "10.96.0.0/16"


# ---- certificates ---------------------------------------------------------------------------
def _write(path, data, mode=0o600):
    path = pathlib.Path(path)
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject_cn, issuer_cert, issuer_key, key, org=None, ca=False, sans=(), client=False):
    names = [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
    if org:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    subject = x509.Name(names)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        entries = []
        for san in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                entries.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def make_pki(directory):
    """CA, API server serving cert, admin client cert (system:masters), service-account key pair."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("agw-obs-controlplane-ca", None, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("kube-apiserver", ca, ca_key, server_key,
                   sans=("127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
                         "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _cert("agw-obs-admin", ca, ca_key, admin_key, org="system:masters", client=True)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    return {
        "ca_crt": _write(directory / "ca.crt", ca.public_bytes(pem), 0o644),
        "server_crt": _write(directory / "apiserver.crt", server.public_bytes(pem), 0o644),
        "server_key": _write(directory / "apiserver.key", _pem_key(server_key)),
        "admin_crt": _write(directory / "admin.crt", admin.public_bytes(pem), 0o644),
        "admin_key": _write(directory / "admin.key", _pem_key(admin_key)),
        "sa_key": _write(directory / "sa.key", _pem_key(sa_key)),
        "sa_pub": _write(directory / "sa.pub", sa_key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644),
    }


def kubeconfig(server, pki, context=CONTEXT):
    """A self-contained kubeconfig (data embedded) for the admin user."""
    def b64(path):
        return base64.b64encode(pathlib.Path(path).read_bytes()).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": b64(pki["ca_crt"])}}],
        "users": [{"name": context + "-admin",
                   "user": {"client-certificate-data": b64(pki["admin_crt"]), "client-key-data": b64(pki["admin_key"])}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context + "-admin"}}],
        "current-context": context,
    }


# ---- processes ----------------------------------------------------------------------------
def _spawn(argv, log_path):
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    # Popen can return while the child is still inside execve: /proc/<pid> then shows the
    # Python that forked it, and _alive() would take the process for dead (seen on a loaded machine).
    deadline = time.monotonic() + 10.0
    while not _alive(proc.pid, argv[0]) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc.pid


def _alive(pid, binary):
    """True when ``pid`` runs (not a zombie) and is still ``binary`` (a recycled PID is not ours to stop)."""
    try:
        stat = pathlib.Path("/proc/%d/stat" % pid).read_text()
    except (OSError, ValueError):
        return False
    # "<pid> (<comm>) <state> ...": comm is the program name, cut to 15 characters by the kernel.
    comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:][:1]
    return state != "Z" and comm == os.path.basename(binary)[:15]


def stop_pid(pid, binary, timeout=15.0):
    """SIGTERM the process group of ``pid``, then SIGKILL after ``timeout``."""
    if not _alive(pid, binary):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, binary):
            return
        try:  # reap it when it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(path, lines=30):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


class ControlPlane(object):
    """etcd + kube-apiserver + kube-controller-manager in ``workdir``; ``start()`` / ``stop()``."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir).resolve()
        self.state_path = self.workdir / STATE_FILE
        self.kubeconfig_path = self.workdir / "kubeconfig"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    @property
    def server(self):
        return self.state.get("server")

    def _ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.state["pki"]["ca_crt"])
        ctx.load_cert_chain(self.state["pki"]["admin_crt"], self.state["pki"]["admin_key"])
        return ctx

    def get(self, path, timeout=5):
        """GET ``path`` from the API server as the admin user; (status, body text)."""
        req = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context()) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def _wait(self, what, check, pid_key, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            name = pid_key
            if not _alive(self.state["pids"][name], self.state["binaries"][name]):
                raise RuntimeError("%s exited before %s:\n%s" % (name, what, _tail(self.workdir / (name + ".log"))))
            try:
                if check():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError, ValueError) as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError("%s: %s not reached in %ss (%s):\n%s"
                           % (pid_key, what, timeout, last, _tail(self.workdir / (pid_key + ".log"))))

    def start(self, timeout=180.0):
        if self.state.get("pids") and any(_alive(pid, self.state["binaries"][name])
                                          for name, pid in self.state["pids"].items()):
            raise RuntimeError("a control plane already runs from %s; stop it first" % self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        binaries = {name: tool(name) for name in ("etcd", "kube-apiserver", "kube-controller-manager")}
        pki = make_pki(self.workdir / "pki")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.state = {"server": "https://127.0.0.1:%d" % api_port, "pki": pki, "binaries": binaries, "pids": {},
                      "kubeconfig": str(self.kubeconfig_path), "context": CONTEXT}
        etcd_url = "http://127.0.0.1:%d" % etcd_port
        peer_url = "http://127.0.0.1:%d" % peer_port

        self.state["pids"]["etcd"] = _spawn([
            binaries["etcd"], "--name=default", "--data-dir=%s" % (self.workdir / "etcd"),
            "--listen-client-urls=" + etcd_url, "--advertise-client-urls=" + etcd_url,
            "--listen-peer-urls=" + peer_url, "--initial-advertise-peer-urls=" + peer_url,
            "--initial-cluster=default=" + peer_url, "--unsafe-no-fsync=true", "--log-level=warn",
        ], self.workdir / "etcd.log")
        self._save()
        self._wait("etcd /health", lambda: _http_ok(etcd_url + "/health"), "etcd", timeout)

        self.state["pids"]["kube-apiserver"] = _spawn([
            binaries["kube-apiserver"],
            "--etcd-servers=" + etcd_url,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=%d" % api_port,
            "--cert-dir=%s" % (self.workdir / "pki"),
            "--tls-cert-file=" + pki["server_crt"], "--tls-private-key-file=" + pki["server_key"],
            "--client-ca-file=" + pki["ca_crt"],
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=" + pki["sa_pub"],
            "--service-account-signing-key-file=" + pki["sa_key"],
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # on by default since 1.25; named so the Pod Security tests do not depend on the default
            "--enable-admission-plugins=PodSecurity",
            "--v=1",
        ], self.workdir / "kube-apiserver.log")
        self._save()
        self._write_kubeconfig()
        self._wait("kube-apiserver /readyz", lambda: self.get("/readyz")[0] == 200, "kube-apiserver", timeout)

        self.state["pids"]["kube-controller-manager"] = _spawn([
            binaries["kube-controller-manager"],
            "--kubeconfig=%s" % self.kubeconfig_path,
            "--bind-address=127.0.0.1", "--secure-port=0",
            "--leader-elect=false",
            "--service-account-private-key-file=" + pki["sa_key"],
            "--root-ca-file=" + pki["ca_crt"],
            "--service-cluster-ip-range=" + SERVICE_CIDR,
            "--v=1",
        ], self.workdir / "kube-controller-manager.log")
        self._save()
        # The controllers' first objects in each system namespace (its default ServiceAccount and
        # the kube-root-ca.crt ConfigMap) show that the controller manager runs its controllers
        # (namespace deletion and garbage collection too). Waiting for all of them, not only
        # namespace default's, keeps them out of a test's before/after comparison: on a loaded
        # machine kube-system's ServiceAccount came seconds after default's.
        paths = ["/api/v1/namespaces/%s/%s" % (ns, obj) for ns in ("default", "kube-system", "kube-public", "kube-node-lease")
                 for obj in ("serviceaccounts/default", "configmaps/kube-root-ca.crt")]
        self._wait("the system namespaces' default ServiceAccounts and kube-root-ca.crt (controllers running)",
                   lambda: all(self.get(path)[0] == 200 for path in paths), "kube-controller-manager", timeout)
        return self

    def _write_kubeconfig(self):
        text = json.dumps(kubeconfig(self.server, self.state["pki"]), indent=2)
        _write(self.kubeconfig_path, text.encode("utf-8"))

    def _save(self):
        _write(self.state_path, json.dumps(self.state, indent=2).encode("utf-8"), 0o644)

    def stop(self):
        # Reverse order: the controller manager and API server before the storage they talk to.
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            pid = (self.state.get("pids") or {}).get(name)
            if pid:
                stop_pid(pid, self.state["binaries"][name])
        if self.state:
            self.state["pids"] = {}
            self._save()

    def running(self):
        return bool(self.state.get("pids")) and all(
            _alive(pid, self.state["binaries"][name]) for name, pid in self.state["pids"].items())


def _http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--dir", required=True, help="working folder: certificates, data, logs, kubeconfig, PIDs")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.dir)
    if args.action == "start":
        try:
            plane.start()
        except Exception:
            plane.stop()
            raise
        print(json.dumps({"kubeconfig": str(plane.kubeconfig_path), "context": CONTEXT, "server": plane.server,
                          "pids": plane.state["pids"]}, indent=2))
    elif args.action == "stop":
        plane.stop()
    else:
        print(json.dumps({"running": plane.running(), "server": plane.server, "pids": plane.state.get("pids")}))
        return 0 if plane.running() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
