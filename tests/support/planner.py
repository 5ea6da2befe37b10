"""The roles' plans, computed in-process from the roles' own files, the way a play computes them.

A role's part of the desired state is the value of ``_<role>_plan`` in its ``vars/main.yml``,
templated over the shared defaults and vars (role agw_obs), the role's defaults and vars, and the
settings a test passes (they win, as extra vars do). This module templates exactly that with
Ansible's own templating engine and the collection's own filters, so a test that needs one role
with one setting changed gets the role's files in a few milliseconds instead of an
ansible-playbook run. The settings checks run through the same lazy mapping the
``check_settings`` action uses.

What a play adds beyond this (include_role scoping, tags, the deploy action's outlets, check mode)
is covered by the end-to-end runs of site.yml (tests/functional/test_site_*.py and molecule).
"""

from __future__ import annotations

import copy
import functools
import pathlib

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".venv" / "collections"


@functools.lru_cache(maxsize=None)
def _ansible():
    """Ansible's templating engine with the collection loader and plugin loader pointed at the checkout."""
    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel
    from ansible.utils.collection_loader import AnsibleCollectionConfig  # pylint: disable=import-outside-toplevel

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(COLLECTIONS)])
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel

    loader = DataLoader()
    loader.set_basedir(str(REPO))
    return loader


@functools.lru_cache(maxsize=None)
def _role_file(role, kind):
    path = REPO / "roles" / role / kind / "main.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _trusted(value):
    from ansible.template import trust_as_template  # pylint: disable=import-outside-toplevel

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def role_variables(role, settings=None, roles=()):
    """The variables a task of ``role`` sees: agw_obs's and the role's defaults and vars, then ``settings``.

    ``roles`` adds more roles' defaults and vars (before ``role``'s), for roles that read another
    role's (existing_stack takes prometheus's and grafana's exports).
    """
    variables = {}
    for name in ("agw_obs",) + tuple(roles) + (role,):
        for kind in ("defaults", "vars"):
            variables.update(_trusted(copy.deepcopy(_role_file(name, kind))))
    variables.update(copy.deepcopy(settings or {}))
    variables["role_path"] = str(REPO / "roles" / role)
    variables.setdefault("ansible_check_mode", False)
    return variables


def templar(role, settings=None, roles=()):
    from ansible.template import Templar  # pylint: disable=import-outside-toplevel

    return Templar(loader=_ansible(), variables=role_variables(role, settings, roles))


def value(role, name, settings=None, roles=()):
    """The value of variable ``name`` as a task of ``role`` sees it, as builtin types."""
    from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (  # noqa: E501 pylint: disable=import-outside-toplevel
        plain,
    )

    engine = templar(role, settings, roles)
    return plain(engine.template(engine.available_variables[name]))


def settings_of(role, settings=None, roles=()):
    """The lazy mapping of ``role``'s variables the check_settings action hands to the validators."""
    from ansible_collections.agentgateway.observability.plugins.action.check_settings import (  # noqa: E501 pylint: disable=import-outside-toplevel
        _TaskSettings,
    )

    engine = templar(role, settings, roles)
    return _TaskSettings(engine, engine.available_variables)


def check(role, settings=None, entry_point="plan"):
    """(what, problems) of ``role``'s settings, as ``check_settings`` reports them."""
    from ansible_collections.agentgateway.observability.plugins.plugin_utils.settings_checks import (  # noqa: E501 pylint: disable=import-outside-toplevel
        check as run_check,
    )

    return run_check(role, entry_point, settings_of(role, settings))


def problems(role, settings=None, entry_point="plan"):
    return check(role, settings, entry_point)[1]


EXPORTS = {
    # role existing_stack's plan takes these facts from roles prometheus and grafana (tasks/export.yml)
    "existing_stack": [
        ("prometheus", "_prometheus_export", {
            "rule_groups": "{{ _prometheus_rule_groups.alerting + _prometheus_rule_groups.recording }}",
            "job_name": "{{ prometheus_gateway_job_name }}",
            "namespaces": "{{ prometheus_gateway_namespaces }}",
            "pod_labels": "{{ prometheus_gateway_pod_labels }}",
            "port": "{{ prometheus_gateway_metrics_port | int }}",
            "path": "{{ prometheus_gateway_metrics_path }}"}),
        ("grafana", "_grafana_export", {
            "dashboard_files": "{{ _grafana_dashboard_files }}",
            "dashboards_folder": "{{ grafana_dashboards_folder }}",
            "folder_annotation": "{{ _grafana_folder_annotation }}",
            "datasources": {"tempo": "{{ _grafana_ds_tempo }}", "loki": "{{ _grafana_ds_loki }}"}}),
    ],
}


def plan(role, settings=None):
    """``role``'s part of the desired state for ``settings`` (what its tasks/plan.yml adds to _agw_obs_plans)."""
    settings = dict(settings or {})
    if role == "existing_stack":
        grafana = dict(settings)  # the vars of existing_stack's include of grafana's export
        grafana.update(_trusted({"grafana_tempo_url": "{{ existing_stack_tempo_datasource_url }}",
                                 "grafana_loki_url": "{{ existing_stack_loki_datasource_url }}",
                                 "grafana_loki_enabled": "{{ existing_stack_loki_datasource_url | length > 0 }}"}))
        exports = {}
        for source, fact, shape in EXPORTS[role]:
            source_settings = grafana if source == "grafana" else settings
            engine = templar(source, dict(source_settings, **{"_export_shape": _trusted(shape)}), roles=(role,))
            exports[fact] = engine.template(engine.available_variables["_export_shape"])
        settings.update(exports)
    return value(role, "_%s_plan" % role, settings)


def site_roles(settings=None):
    """The roles site.yml plans for ``settings``, in order (agw_obs's _agw_obs_site_roles)."""
    return value("agw_obs", "_agw_obs_site_roles", settings)


def plan_site(settings=None, roles=None):
    """{role: part} of every role site.yml plans (the verification adds no part)."""
    parts = {}
    for role in roles or site_roles(settings):
        if role != "verification":
            parts[role] = plan(role, settings)
    return parts


def deployed(part):
    """What agw_obs's add_part.yml keeps of a part for the deploy path: all but its ``services``."""
    return {key: value for key, value in part.items() if key != "services"}


def services(parts):
    """The site's Services, as agw_obs's add_part.yml collects them (_agw_obs_services: {key: entry with its role})."""
    out = {}
    for role, part in parts.items():
        for key, entry in (part.get("services") or {}).items():
            out[key] = dict(entry, role=role)
    return out


def site(parts, chart_mirror="", pod_security_labels="none"):
    """The deploy path's Site of ``parts`` (every part checked on its own, then together), with the
    site's own part last: the Namespace objects of its labelled namespaces (role agw_obs), as the
    render outlet adds it."""
    from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (  # noqa: E501 pylint: disable=import-outside-toplevel
        SITE_ROLE,
        Plan,
        Site,
    )

    roles = Site([Plan.from_part(deployed(part), chart_mirror=chart_mirror) for part in parts.values()],
                 pod_security_labels)
    namespaces = roles.namespace_objects()
    if not namespaces:
        return roles
    return Site(roles.plans + [Plan(SITE_ROLE, before_releases=namespaces)], pod_security_labels, levels=roles.levels)


def site_of(settings=None, roles=None):
    """The Site site.yml would render or apply for ``settings``."""
    settings = dict(settings or {})
    settings.setdefault("agw_obs_render_dir", "/render")
    return site(plan_site(settings, roles), settings.get("agw_obs_chart_repository_mirror", ""),
                value("agw_obs", "agw_obs_pod_security_labels", settings))


def documents(settings=None, roles=None):
    """{relative path: file text} site.yml would render for ``settings`` (index.yaml excluded)."""
    return site_of(settings, roles).documents()


def objects(settings=None, roles=None):
    """{relative path: parsed document} of ``documents``."""
    return {path: yaml.safe_load(text) for path, text in documents(settings, roles).items()}
