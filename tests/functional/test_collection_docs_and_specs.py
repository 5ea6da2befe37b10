"""Collection-wide conventions: docs render, argument specs mirror defaults, names are prefixed.

ansible-doc renders the docs the way a user reads them: one run for every module, one for every
filter and one for every role (every entry point of every role in the output), instead of one run
per plugin or entry point.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import yaml

from ansible_collections.agentgateway.observability.plugins.modules import check_settings
from ansible_collections.agentgateway.observability.plugins.plugin_utils.settings_checks import VALIDATORS
from support.fixtures import REPO, VENV_BIN, ansible_env
from support.tasks import file_calls, included_task_files

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTER_DOCS = sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.yml"))
FQCN = "agentgateway.observability.%s"

# The entry points of each role. main: the role on its own (include_role / roles:). plan: its part
# of the site's plan, side-effect free (agw_obs plan_site includes it for every role of the site);
# export: what role existing_stack takes from prometheus and grafana; credentials: where Grafana's
# admin credentials are, after the deploy; send: the traffic, after the deploy; run and summary: the
# verification and the closing screen of site.yml; diagnose: the support bundle. The preflight entry
# points are gone (the settings are checked by each role's plan).
ENTRY_POINTS = {
    "agentgateway": ["main", "plan"],
    "agw_obs": ["main"],
    "existing_stack": ["main", "plan"],
    "gateway_observability": ["main", "plan"],
    "grafana": ["main", "plan", "export", "credentials"],
    "kind_cluster": ["main"],
    "loki": ["main", "plan"],
    "mock_backend": ["main", "plan"],
    "prometheus": ["main", "plan", "export"],
    "tempo": ["main", "plan"],
    "traffic": ["main", "plan", "send"],
    "verification": ["main", "plan", "run", "summary", "diagnose"],
}
# Modules that take no cluster or service settings, so a play's module_defaults for the action group
# have nothing to give them.
NOT_IN_ACTION_GROUP = ["check_settings"]


def ansible_doc(*args):
    return subprocess.run([str(VENV_BIN / "ansible-doc")] + list(args), env=ansible_env(), capture_output=True,
                          text=True, timeout=300, check=False)


def sections(text, kind):
    """{name: its part of the output} of a multi-plugin ansible-doc run (each part starts with '> KIND name')."""
    parts = re.split(r"^> %s:? \**agentgateway\.observability\.(\w+)\**" % kind, text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def argument_specs(role):
    return yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def test_every_role_has_an_argument_spec():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES, "roles without meta/argument_specs.yml"


def test_module_docs_render():
    proc = ansible_doc("-t", "module", *[FQCN % m for m in MODULES])
    assert proc.returncode == 0, proc.stderr
    docs = sections(proc.stdout, "MODULE")
    assert sorted(docs) == MODULES, (sorted(docs), proc.stderr)
    for module, text in docs.items():
        for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
            assert section in text, "%s: no %s" % (module, section)


def test_filter_docs_render():
    proc = ansible_doc("-t", "filter", *[FQCN % f for f in FILTER_DOCS])
    assert proc.returncode == 0, proc.stderr
    docs = sections(proc.stdout, "FILTER")
    assert sorted(docs) == FILTER_DOCS, (sorted(docs), proc.stderr)
    for name, text in docs.items():
        assert "EXAMPLES" in text, "%s: no EXAMPLES" % name


def test_role_docs_render_every_entry_point():
    """Every entry point of every role (main, plan, export, credentials, send, run, summary, diagnose) renders."""
    proc = ansible_doc("-t", "role", *[FQCN % r for r in ROLES])
    assert proc.returncode == 0, proc.stderr
    docs = sections(proc.stdout, "ROLE")
    assert sorted(docs) == ROLES, (sorted(docs), proc.stderr)
    for role, text in docs.items():
        listed = re.findall(r"^ENTRY POINT: \**(\w+)\** - \S", text, flags=re.M)
        assert sorted(listed) == sorted(argument_specs(role)), (role, listed)


def test_the_entry_points_are_the_documented_ones_and_each_has_its_tasks():
    assert {role: sorted(argument_specs(role)) for role in ROLES} == {
        role: sorted(entries) for role, entries in ENTRY_POINTS.items()}
    for role, entries in ENTRY_POINTS.items():
        for entry in entries:
            # agw_obs's main validates the shared settings when a role depends on it; it has no tasks
            if (role, entry) != ("agw_obs", "main"):
                assert (REPO / "roles" / role / "tasks" / ("%s.yml" % entry)).is_file(), (role, entry)
    # agw_obs plan_site plans every role of the site (either stack mode) through its plan entry point
    site_roles = ["prometheus", "tempo", "loki", "grafana", "existing_stack", "agentgateway", "gateway_observability",
                  "mock_backend", "traffic", "verification"]
    assert [r for r in site_roles if "plan" not in ENTRY_POINTS[r]] == []


TASK_FILES = sorted((REPO / "playbooks").glob("*.yml")) + sorted((REPO / "roles").glob("*/tasks/*.yml"))


def test_every_entry_point_the_playbooks_and_roles_include_is_documented():
    """include_role with tasks_from validates against that entry point's spec: each one must exist.

    Role agw_obs's task files (plan_site, add_part, deploy) are the collection's internal path, run
    with the shared settings its main entry point validates.
    """
    includes = set(included_task_files(TASK_FILES))
    assert ("verification", "run") in includes and ("traffic", "send") in includes
    undocumented = sorted((role, entry) for role, entry in includes
                          if role != "agw_obs" and "{{" not in role and entry not in ENTRY_POINTS.get(role, []))
    assert undocumented == []


def test_check_settings_takes_every_role_and_each_call_has_its_validator():
    options = yaml.safe_load(check_settings.DOCUMENTATION)["options"]
    assert sorted(options["role"]["choices"]) == ROLES
    assert sorted(options["entry_point"]["choices"]) == sorted({entry for _role, entry in VALIDATORS})
    calls = {(args["role"], args.get("entry_point", "plan")) for args in file_calls(TASK_FILES, "check_settings")}
    assert ("verification", "diagnose") in calls and ("prometheus", "export") in calls
    assert sorted(calls - set(VALIDATORS)) == []


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


def defaults_of(role):
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    return (yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}) or {}


def test_the_variable_reference_documents_every_variable_with_its_default():
    for role in ROLES:
        page = (REPO / "docs" / "variables" / ("%s.md" % role)).read_text()
        for name in defaults_of(role):
            assert "| `%s` |" % name in page, "%s: %s missing from docs/variables/%s.md" % (role, name, role)


def test_argument_specs_mirror_the_defaults_key_for_key():
    for role in ROLES:
        defaults = defaults_of(role)
        specs = argument_specs(role)
        options = specs["main"].get("options") or {}
        assert sorted(options) == sorted(defaults), "%s: argument_specs.main and defaults/main.yml differ" % role
        for name, value in defaults.items():
            assert "default" in options[name], "%s: no default in the spec" % name
            assert options[name]["default"] == value, "%s: spec default %r != defaults %r" % (
                name, options[name]["default"], value)
            assert options[name].get("description"), "%s: no description" % name
        for entry, spec in specs.items():
            if entry != "main" and spec.get("options") is not None:
                assert spec["options"] == options, "%s: entry point %s drifts from main" % (role, entry)


def test_role_variables_carry_the_role_prefix():
    for role in ROLES:
        prefix = role + "_"  # the shared role is agw_obs, so its settings are agw_obs_*
        assert [k for k in defaults_of(role) if not k.startswith(prefix)] == [], role


def test_action_group_lists_every_module_with_cluster_or_service_settings():
    runtime = yaml.safe_load(pathlib.Path(REPO, "meta", "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["observability"]) == sorted(set(MODULES) - set(NOT_IN_ACTION_GROUP))
    assert set(NOT_IN_ACTION_GROUP) <= set(MODULES)
