"""Fixtures shared by the functional tests: running playbooks in render mode, the Prometheus tools."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from support.tools import ToolMissing, tool

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent


def ansible_env(**extra):
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_LOCAL_TEMP": str(REPO / ".cache" / "ansible-tmp"),
            "PATH": "%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
        }
    )
    env.update(extra)
    return env


def playbook_command(playbook, extra_vars=None, args=()):
    """The ansible-playbook command line for ``playbook`` with ``extra_vars`` and ``args``."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    for key, value in (extra_vars or {}).items():
        # JSON keeps types (ints, lists, dicts) intact on the command line
        cmd += ["-e", yaml.safe_dump({key: value}, default_flow_style=True).strip()]
    return cmd + list(args)


def run_playbook(playbook, extra_vars=None, args=(), check=True, cwd=None):
    """Run ansible-playbook; return the CompletedProcess (stdout + stderr merged in .stdout)."""
    proc = subprocess.run(playbook_command(playbook, extra_vars, args), cwd=cwd or REPO, env=ansible_env(), capture_output=True, text=True, timeout=600,
                          check=False)
    proc.stdout = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError("ansible-playbook %s failed (rc=%s):\n%s" % (playbook, proc.returncode, proc.stdout[-6000:]))
    return proc


def render_playbook(playbook, render_dir, extra_vars=None, check=True, args=()):
    """Run ``playbook`` in render mode into ``render_dir``."""
    variables = {"agw_obs_render_dir": str(render_dir)}
    variables.update(extra_vars or {})
    return run_playbook(playbook, variables, args=args, check=check)


def assert_rejected_before_writing(proc, render_dir, *names):
    """The run failed, its output names each of ``names``, and nothing was written to ``render_dir``."""
    assert proc.returncode != 0, "the run succeeded:\n%s" % proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    assert not os.path.exists(render_dir) or snapshot(render_dir) == {}, "files were written before the input was rejected"


def render_site(render_dir, extra_vars=None, check=True, args=()):
    """`make render DIR=render_dir ARGS=...`, without make: site.yml in render mode."""
    return render_playbook(REPO / "site.yml", render_dir, extra_vars, check=check, args=args)


def rendered_manifests(render_dir):
    """{relative path: object} of every manifest under render_dir/manifests."""
    out = {}
    for path in sorted(pathlib.Path(render_dir, "manifests").rglob("*.yaml")):
        out[str(path.relative_to(render_dir))] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return out


def load_rendered(render_dir, rel_path):
    with open(os.path.join(render_dir, rel_path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    out = {}
    for path in sorted(pathlib.Path(directory).rglob("*")):
        if path.is_file():
            out[str(path.relative_to(directory))] = path.read_bytes()
    return out


@pytest.fixture(scope="session")
def rendered_site(site_render):
    """The default site (kind profile, oss), rendered once per session (support.session); read-only for tests."""
    return site_render("default")


@pytest.fixture(scope="session")
def prometheus_values(rendered_site):
    return load_rendered(rendered_site, "helm/monitoring/prometheus.yaml")["values"]


def _tool(name):
    try:
        return tool(name)
    except ToolMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def promtool():
    return _tool("promtool")


@pytest.fixture(scope="session")
def prometheus_binary():
    return _tool("prometheus")
