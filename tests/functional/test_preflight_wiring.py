"""Each role's preflight checks exactly the desired state its deploy step hands over.

site.yml relies on it: every preflight runs before any role deploys, and the last preflight task of
each role hands its entries to the deploy action with validate_only. If a role's deploy call
changed and its validate call did not, the check would pass on something else than what is applied.
"""

from __future__ import annotations

import pytest
import yaml

from support.fixtures import REPO

DEPLOYING_ROLES = ["prometheus", "tempo", "grafana", "loki", "agentgateway", "gateway_observability", "mock_backend"]
CHART_ROLES = ["prometheus", "tempo", "grafana", "loki"]


def tasks(role, name):
    return yaml.safe_load((REPO / "roles" / role / "tasks" / name).read_text(encoding="utf-8"))


def include_of(task_list, tasks_from):
    found = [t for t in task_list
             if (t.get("ansible.builtin.include_role") or {}).get("tasks_from") == tasks_from]
    assert len(found) == 1, tasks_from
    return found[0]


@pytest.mark.parametrize("role", DEPLOYING_ROLES)
def test_the_preflight_validates_what_the_role_deploys(role):
    deploy = include_of(tasks(role, "main.yml"), "deploy")["vars"]
    preflight = tasks(role, "preflight.yml")
    validate = include_of(preflight, "validate")
    assert preflight[-1] is validate, "the desired state is checked after the variables, as the last preflight step"
    handed = {k: v for k, v in validate["vars"].items() if k != "_agw_obs_deploy_settings"}
    assert handed == {k: v for k, v in deploy.items() if k != "_agw_obs_deploy_no_log"}
    assert validate["ansible.builtin.include_role"]["apply"] == {"tags": ["always"]}


@pytest.mark.parametrize("role", DEPLOYING_ROLES)
def test_the_settings_named_in_messages_are_the_roles_own_variables(role):
    settings = include_of(tasks(role, "preflight.yml"), "validate")["vars"]["_agw_obs_deploy_settings"]
    assert settings
    for name, value in settings.items():
        assert name.startswith((role + "_", "agw_obs_")), name
        assert value == "{{ %s }}" % name


@pytest.mark.parametrize("role", CHART_ROLES)
def test_chart_roles_check_their_chart_settings_first(role):
    preflight = tasks(role, "preflight.yml")
    check = include_of(preflight, "check_chart")
    assert preflight[0] is check
    assert check["vars"] == {"_agw_obs_chart_role": role}
    defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    for suffix in ("chart_repo", "chart_name", "chart_version", "release_name", "namespace", "extra_values"):
        assert "%s_%s" % (role, suffix) in defaults
