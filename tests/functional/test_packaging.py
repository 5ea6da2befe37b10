"""The collection as users get it: the tarball `ansible-galaxy collection build` makes.

The tarball holds the collection and nothing of the checkout's machinery (venv, caches, test
output, node_modules, Go build modules), installs with ansible-galaxy into an empty collections
path, and runs `ansible-playbook agentgateway.observability.site` in render mode from there, with
no checkout on any path Ansible searches.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
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


def test_installed_from_the_tarball_the_site_renders_with_no_checkout_on_the_path(tarball, tmp_path):
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    _run([VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps",
          "-p", str(tmp_path / "collections"), str(tarball)], tmp_path, cwd=workdir)
    listed = _run([VENV_BIN / "ansible-galaxy", "collection", "list", "agentgateway.observability"],
                  tmp_path, cwd=workdir).stdout
    assert str(tmp_path / "collections") in listed and str(REPO) not in listed, listed

    out = tmp_path / "rendered"
    proc = _run([VENV_BIN / "ansible-playbook", "agentgateway.observability.site",
                 "-e", "agw_obs_render_dir=%s" % out], tmp_path, cwd=workdir, timeout=600)
    assert "failed=0" in proc.stdout, proc.stdout[-3000:]
    assert str(REPO) not in proc.stdout + proc.stderr
    index = yaml.safe_load((out / "index.yaml").read_text())
    from_index = {entry["role"] for entry in index["entries"]}
    for role in ("prometheus", "tempo", "grafana", "agentgateway", "gateway_observability", "mock_backend"):
        assert role in from_index, (role, sorted(from_index))
    rendered = [p for p in out.rglob("*") if p.is_file()]
    assert len(rendered) > 10, rendered

    # The cleanup playbook imports the site by a path relative to itself: that holds when installed too.
    _run([VENV_BIN / "ansible-playbook", "agentgateway.observability.cleanup",
          "-e", "agw_obs_render_dir=%s" % out], tmp_path, cwd=workdir, timeout=600)
    assert [p for p in out.rglob("*") if p.is_file()] == []


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
