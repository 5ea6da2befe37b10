"""Collection-wide conventions: docs render, argument specs mirror defaults, names are prefixed."""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest
import yaml

from support.fixtures import REPO, VENV_BIN, ansible_env

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTER_DOCS = sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.yml"))


def ansible_doc(*args):
    return subprocess.run([str(VENV_BIN / "ansible-doc")] + list(args), env=ansible_env(), capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_role_has_an_argument_spec():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES, "roles without meta/argument_specs.yml"


@pytest.mark.parametrize("module", MODULES)
def test_module_docs_render(module):
    proc = ansible_doc("-t", "module", "agentgateway.observability.%s" % module)
    assert proc.returncode == 0, proc.stderr
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in proc.stdout, "%s: no %s" % (module, section)


@pytest.mark.parametrize("name", FILTER_DOCS)
def test_filter_docs_render(name):
    proc = ansible_doc("-t", "filter", "agentgateway.observability.%s" % name)
    assert proc.returncode == 0, proc.stderr
    assert "EXAMPLES" in proc.stdout


@pytest.mark.parametrize("role", ROLES)
def test_role_docs_render(role):
    """Every entry point of every role (main, preflight, diagnose, ...) renders with ansible-doc."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    proc = ansible_doc("-t", "role", "agentgateway.observability.%s" % role)
    assert proc.returncode == 0, proc.stderr
    for entry in specs:
        assert re.search(r"ENTRY POINT: \W*%s\b" % re.escape(entry), proc.stdout), (entry, proc.stdout[:500])
        one = ansible_doc("-t", "role", "-e", entry, "agentgateway.observability.%s" % role)
        assert one.returncode == 0 and "ENTRY POINT" in one.stdout, (entry, one.stderr)


def variables_doc(*args):
    return subprocess.run([str(VENV_BIN / "python"), str(REPO / "scripts" / "variables-doc.py")] + list(args),
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_variable_reference_is_current():
    """docs/variables/ is what scripts/variables-doc.py makes of the argument specs today."""
    proc = variables_doc("--check")
    assert proc.returncode == 0, proc.stderr


def test_a_stale_variable_reference_is_named(tmp_path):
    assert variables_doc("--out", str(tmp_path)).returncode == 0
    page = tmp_path / "traffic.md"
    page.write_text(page.read_text().replace("`traffic_requests`", "`traffic_request_count`"))
    (tmp_path / "gone_role.md").write_text("a role that no longer exists\n")
    proc = variables_doc("--check", "--out", str(tmp_path))
    assert proc.returncode == 1
    assert "traffic.md" in proc.stderr and "gone_role.md" in proc.stderr and "make docs" in proc.stderr


def test_the_variable_reference_documents_every_variable_with_its_default():
    for role in ROLES:
        page = (REPO / "docs" / "variables" / ("%s.md" % role)).read_text()
        defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        for name in defaults or {}:
            assert "| `%s` |" % name in page, "%s: %s missing from docs/variables/%s.md" % (role, name, role)


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_mirrors_defaults_key_for_key(role):
    path = REPO / "roles" / role
    defaults_file = path / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    specs = yaml.safe_load((path / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = specs["main"].get("options") or {}
    assert sorted(options) == sorted(defaults or {}), "argument_specs.main and defaults/main.yml differ"
    for name, value in (defaults or {}).items():
        assert "default" in options[name], "%s: no default in the spec" % name
        assert options[name]["default"] == value, "%s: spec default %r != defaults %r" % (
            name, options[name]["default"], value)
        assert options[name].get("description"), "%s: no description" % name
    for entry, spec in specs.items():
        if entry != "main" and spec.get("options") is not None:
            assert spec["options"] == options, "entry point %s drifts from main" % entry


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_carry_the_role_prefix(role):
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    prefix = role + "_"  # the shared role is agw_obs, so its settings are agw_obs_*
    assert [k for k in defaults or {} if not k.startswith(prefix)] == []


def test_action_group_lists_every_module():
    runtime = yaml.safe_load(pathlib.Path(REPO, "meta", "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["observability"]) == MODULES
