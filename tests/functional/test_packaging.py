"""The collection as users get it: the tarball `ansible-galaxy collection build` makes.

The tarball holds the collection and nothing of the checkout's machinery (venv, caches, test
output, node_modules, Go build modules). The acceptance test of a minimal controller: a virtualenv
with only ansible-core and the Python packages of requirements.txt (no `ansible` package, so no
community.* collection), kubernetes.core copied in as the one collection galaxy.yml depends on,
and the tarball installed by that ansible-galaxy; `ansible-playbook agentgateway.observability.site`
renders the whole site from a folder outside the checkout, with no checkout on any path Ansible
searches, and the cleanup playbook removes the files again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from support import tools
from support.fixtures import REPO, VENV_BIN

# Paths of the checkout that must never reach users (build_ignore in galaxy.yml).
FORBIDDEN_PARTS = {".venv", ".cache", ".git", ".github", ".config", ".pytest_cache", "node_modules",
                   "__pycache__", ".benchmarks", ".ansible", ".ci"}
FORBIDDEN_PREFIXES = ("tools/", "tests/output/", "collections/ansible_collections/")


def _env(tmp_path, **extra):
    """An environment that knows nothing of the checkout: no ansible.cfg, no collections link."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nretry_files_enabled = false\ninterpreter_python = auto_silent\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update({
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
        "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "HOME": str(tmp_path / "home"),
        "PATH": "%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
    })
    env.update(extra)
    return env


def _run(cmd, tmp_path, cwd, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, "%s\n%s\n%s" % (" ".join(map(str, cmd)), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("build")
    _run([VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(REPO)],
         tmp_path, cwd=tmp_path)
    built = sorted(tmp_path.glob("agentgateway-observability-*.tar.gz"))
    assert len(built) == 1, built
    return built[0]


def test_the_tarball_holds_the_collection_and_nothing_of_the_checkout(tarball):
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert tarball.name == "agentgateway-observability-%s.tar.gz" % version
    with tarfile.open(tarball) as tar:
        names = [member.name for member in tar.getmembers()]
    stray = [n for n in names if FORBIDDEN_PARTS & set(n.split("/")) or n.startswith(FORBIDDEN_PREFIXES)]
    assert stray == [], stray[:20]
    for needed in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
                   "plugins/action/deploy.py", "plugins/module_utils/kube_client.py", "docs/variables/README.md",
                   "roles/agw_obs/meta/argument_specs.yml", "roles/grafana/files/dashboards/agentgateway-cost.json"):
        assert needed in names, needed
    for role in (REPO / "roles").iterdir():
        assert "roles/%s/meta/argument_specs.yml" % role.name in names, role.name
    assert tarball.stat().st_size < 2 * 1024 * 1024, "%d bytes: something large slipped in" % tarball.stat().st_size


# What a minimal controller installs: ansible-core and the collection's Python packages, pinned in
# requirements.txt (which also pins the full `ansible` package the checkout's tests use: not these).
CORE_PACKAGES = ("ansible-core", "kubernetes", "pyyaml", "jsonpatch")
# kubernetes.core as the full ansible package in the checkout's venv ships it (an installed collection).
KUBERNETES_CORE = pathlib.Path(sys.prefix, "lib", "python%d.%d" % sys.version_info[:2], "site-packages",
                               "ansible_collections", "kubernetes", "core")


def _core_only_venv():
    """A virtualenv with ansible-core and the Python packages of requirements.txt, and no `ansible`.

    Built once under .cache/ (pip from PyPI or its cache) and kept for later runs, keyed by the pins
    and the Python version; a file lock keeps concurrent sessions from building it twice.
    """
    pins = _pins(REPO / "requirements.txt")
    wanted = ["%s==%s" % (name, pins[name]) for name in CORE_PACKAGES]
    key = hashlib.sha256(("\n".join(wanted) + "\n" + sys.version).encode()).hexdigest()[:16]
    cache = REPO / ".cache" / "packaging"
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / ("ansible-core-venv-" + key)
    with open(cache / (venv.name + ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".done").exists():
            for old in cache.glob("ansible-core-venv-*"):   # this one unfinished, or built for other pins
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            for cmd in ([sys.executable, "-m", "venv", str(venv)],
                        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                        + wanted):
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
                assert proc.returncode == 0, "%s\n%s\n%s" % (" ".join(cmd), proc.stdout[-3000:], proc.stderr[-3000:])
            (venv / ".done").write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return venv


def _outside_env(tmp_path, venv):
    """_env with the core-only venv first on PATH and nothing of the checkout on any path."""
    path = [str(venv / "bin")] + [p for p in os.environ.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(str(REPO))]
    env = _env(tmp_path, PATH=os.pathsep.join(path))
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "KUBECONFIG"):
        env.pop(name, None)
    return env


def _run_outside(cmd, tmp_path, venv, cwd, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_outside_env(tmp_path, venv), capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, "%s\n%s\n%s" % (" ".join(map(str, cmd)), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def test_with_ansible_core_only_the_installed_tarball_renders_and_cleans_up_the_site(tarball, tmp_path):
    """The acceptance test of a controller with ansible-core alone (the ansible-core of requirements.txt,
    kubernetes, PyYAML, jsonpatch; no `ansible` package): kubernetes.core, the one dependency galaxy.yml
    declares, copied into a fresh collections path; the tarball installed there by that venv's
    ansible-galaxy (offline: the dependency is found installed); then from a folder outside the
    checkout `agentgateway.observability.site` renders every file and `agentgateway.observability.cleanup`
    removes them. No community.* collection exists in that environment, so a plugin redirected there
    (ansible.builtin.filetree is community.general.filetree) fails the run."""
    venv = _core_only_venv()
    python = venv / "bin" / "python"
    assert subprocess.run([python, "-m", "pip", "show", "-q", "ansible"], capture_output=True,
                          check=False).returncode != 0, "the venv has the ansible package"
    versions = subprocess.run([python, "-c", "import ansible.release, kubernetes, yaml, jsonpatch; "
                               "print(ansible.release.__version__, kubernetes.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    pins = _pins(REPO / "requirements.txt")
    assert versions == [pins["ansible-core"], pins["kubernetes"]], versions

    collections = tmp_path / "collections"
    shutil.copytree(KUBERNETES_CORE, collections / "ansible_collections" / "kubernetes" / "core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    _run_outside([venv / "bin" / "ansible-galaxy", "collection", "install", "--offline", "-p", collections, tarball],
                 tmp_path, venv, workdir)
    listed = _run_outside([venv / "bin" / "ansible-galaxy", "collection", "list", "--format", "json"],
                          tmp_path, venv, workdir).stdout
    # ansible-core lists its own internal collection (ansible._protomatter) too; nothing else is there
    paths = json.loads(listed)
    everywhere = {name for where in paths.values() for name in where}
    assert not [name for name in everywhere if name.startswith("community.") or name == "ansible.posix"], listed
    assert {name for name in everywhere if not name.startswith("ansible.")} == {
        "agentgateway.observability", "kubernetes.core"}, listed
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert {name: info["version"] for name, info in paths[str(collections / "ansible_collections")].items()} == {
        "agentgateway.observability": version, "kubernetes.core": "6.2.0"}, listed
    assert not list(venv.glob("lib/python*/site-packages/ansible_collections")), "collections came with a package"

    out = tmp_path / "rendered"
    proc = _run_outside([venv / "bin" / "ansible-playbook", "agentgateway.observability.site",
                         "-e", "agw_obs_render_dir=%s" % out], tmp_path, venv, workdir)
    assert re.search(r"localhost\s+: ok=\d+\s+changed=[1-9]\d* .*failed=0", proc.stdout), proc.stdout[-3000:]
    assert str(REPO) not in proc.stdout + proc.stderr
    index = yaml.safe_load((out / "index.yaml").read_text())
    from_index = {entry["role"] for entry in index["entries"]}
    assert from_index == {"prometheus", "tempo", "grafana", "agentgateway", "gateway_observability",
                          "mock_backend"}, sorted(from_index)
    rendered = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert len(rendered) > 10 and "index.yaml" in rendered, rendered

    # The cleanup playbook imports the site by a path relative to itself: that holds when installed too.
    proc = _run_outside([venv / "bin" / "ansible-playbook", "agentgateway.observability.cleanup",
                         "-e", "agw_obs_render_dir=%s" % out], tmp_path, venv, workdir)
    assert [p for p in out.rglob("*") if p.is_file()] == []
    assert re.search(r"localhost\s+: ok=\d+\s+changed=[1-9]\d* .*failed=0", proc.stdout), proc.stdout[-3000:]


# Plugins ansible-core itself routes to another collection (lib/ansible/config/ansible_builtin_runtime.yml):
# lookup('ansible.builtin.filetree') is community.general.filetree, which a core-only controller lacks.
_LOOKUP = re.compile(r"""\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.)?(\w+)['"]""")
_FILTER = re.compile(r"\|\s*(?:ansible\.builtin\.)?(\w+)")
_MODULE = re.compile(r"^\s*(?:-\s+)?ansible\.builtin\.(\w+):", re.M)
_OTHER_COLLECTION = re.compile(r"(?<![\w.-])(community\.[a-z_]+|ansible\.posix)\b")


def test_the_collection_uses_no_collection_but_kubernetes_core():
    """galaxy.yml declares kubernetes.core only: no file of roles/, playbooks/, plugins/ or meta/ names a
    community.* collection or ansible.posix, and no lookup, filter or module they use is one that
    ansible-core redirects to a collection other than kubernetes.core (found here without running
    every code path: apply mode and the kind cluster do not run in the test above)."""
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert galaxy["dependencies"] == {"kubernetes.core": ">=6.2.0"}
    import ansible.config  # pylint: disable=import-outside-toplevel

    routing = yaml.safe_load(pathlib.Path(ansible.config.__file__).with_name("ansible_builtin_runtime.yml")
                             .read_text(encoding="utf-8"))["plugin_routing"]

    def redirected(kind):
        return {name for name, entry in (routing.get(kind) or {}).items()
                if isinstance(entry, dict) and "redirect" in entry
                and not entry["redirect"].startswith(("ansible.builtin.", "kubernetes.core."))}

    routed = {"lookup": redirected("lookup"), "filter": redirected("filter") | redirected("test"),
              "module": redirected("modules") | redirected("action")}
    assert "filetree" in routed["lookup"]   # the routing file is read right
    named, routed_uses, scanned = [], [], 0
    for tree in ("roles", "playbooks", "plugins", "meta"):
        for path in sorted((REPO / tree).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            scanned += 1
            rel = str(path.relative_to(REPO))
            named += ["%s: %s" % (rel, m.group(1)) for m in _OTHER_COLLECTION.finditer(text)]
            if path.suffix in (".yml", ".yaml", ".j2"):
                for kind, pattern in (("lookup", _LOOKUP), ("filter", _FILTER), ("module", _MODULE)):
                    routed_uses += ["%s: %s %s" % (rel, kind, name) for name in pattern.findall(text)
                                    if name in routed[kind]]
    assert scanned > 100, scanned
    assert named == [], named
    assert routed_uses == [], routed_uses


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_execution_environment_pins_what_the_tests_run():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    tested = _pins(REPO / "requirements.txt")
    deps = ee["dependencies"]
    assert deps["ansible_core"]["package_pip"] == "ansible-core==%s" % tested["ansible-core"]
    for line in deps["python"]:
        name, version = line.split("==")
        assert tested[name.lower()] == version, line
    galaxy = {c["name"]: c for c in deps["galaxy"]["collections"]}
    assert galaxy["kubernetes.core"]["version"] == "6.2.0"  # what ansible==12.3.0 in requirements.txt ships


def test_the_execution_environment_build_context(tarball, tmp_path):
    """ansible-builder writes the build context: our tarball and helm staged, the galaxy stage
    installs both collections, the final stage has helm. The image build needs a container engine
    and the network, which these machines do not have."""
    staging = tmp_path / ".cache" / "ee" / "staging"
    staging.mkdir(parents=True)
    (staging / "agentgateway-observability.tar.gz").write_bytes(tarball.read_bytes())
    helm = tools.tool("helm")
    (staging / "helm").write_bytes(pathlib.Path(helm).read_bytes())
    (tmp_path / "execution-environment.yml").write_text((REPO / "execution-environment.yml").read_text())
    _run([VENV_BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
          "--output-filename", "Containerfile"], tmp_path, cwd=tmp_path)
    build = tmp_path / "context" / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    for entry in requirements["collections"]:
        if entry.get("type") == "file":  # installed with /build (the context's _build) as working folder
            assert (build / entry["name"]).is_file(), entry
    assert {c["name"] for c in requirements["collections"]} == {
        "kubernetes.core", "_staging/agentgateway-observability.tar.gz"}
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile
    assert "COPY _build/_staging/helm /usr/local/bin/helm" in containerfile
    assert "kubernetes==37.0.2" in (build / "requirements.txt").read_text()


def test_ansible_builder_finds_the_collection_runtime_dependencies(tarball, tmp_path):
    """The introspection ansible-builder runs inside the image, run on the installed tarball: it reads
    meta/execution-environment.yml, not the checkout's development requirements."""
    _run([VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps",
          "-p", str(tmp_path / "collections"), str(tarball)], tmp_path, cwd=tmp_path)
    proc = _run([VENV_BIN / "ansible-builder", "introspect", "--sanitize", str(tmp_path / "collections")],
                tmp_path, cwd=tmp_path)
    assert "kubernetes>=24.2.0  # from collection agentgateway.observability" in proc.stdout, proc.stdout
    assert "tar [platform:rpm]  # from collection agentgateway.observability" in proc.stdout, proc.stdout
    assert "ansible==" not in proc.stdout and "npm" not in proc.stdout, proc.stdout
