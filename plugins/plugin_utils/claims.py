# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each role's desired state claims, and which settings name it (the deploy action's validate_only).

site.yml checks every role's desired state before the first write or apply. Each role's preflight
hands its entries to the deploy action with ``validate_only``, plus ``settings``: the role
variables that name its releases, namespaces, charts and objects ({variable: value}). Failures
then name those variables, not only the release or object, and the entries one role claims
(its render paths, which identify a release or an object in apply mode too) are passed on, so
two roles that would render or apply the same release or object are stopped before either does.
Pure functions, no I/O.
"""

from __future__ import annotations

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import DesiredStateError


def _text_settings(settings):
    return sorted((str(k), v) for k, v in (settings or {}).items() if isinstance(v, str) and v)


def settings_quoted_in(settings, message):
    """Settings whose value appears quoted (as the deploy messages quote names and versions) in ``message``."""
    return [(name, value) for name, value in _text_settings(settings) if repr(value) in message]


def settings_hint(settings, message):
    """' (settings: a='x', b='y')' naming the settings behind a deploy message, or ''."""
    named = settings_quoted_in(settings, message)
    if not named:
        return ""
    return " (set by %s)" % ", ".join("%s=%r" % item for item in named)


def claims_hint(claims, message):
    """' (named by a, b)' for the claimed path a message mentions, or ''."""
    for path in sorted(claims, key=len, reverse=True):
        if path in message and claims[path].get("settings"):
            return " (named by %s)" % ", ".join(claims[path]["settings"])
    return ""


def _describe(entry):
    where = " in namespace %s" % entry["namespace"] if entry.get("namespace") else ""
    if entry.get("type") == "helm_release":
        return "release %s%s" % (entry["release"], where)
    return "%s %s%s" % (entry["kind"], entry["name"], where)


def plan_claims(plan, settings=None):
    """{render path: {role, what, settings}} for every release and object of ``plan``.

    ``settings`` lists the variables whose value is the entry's name or namespace.
    """
    claims = {}
    for path, entry in plan.files():
        parts = {entry.get("release") or entry.get("name"), entry.get("namespace")}
        named = sorted(name for name, value in _text_settings(settings) if value in parts)
        claims[path] = {"role": plan.role, "what": _describe(entry), "settings": named}
    return claims


def check_claims(claims, claimed):
    """DesiredStateError when another role already claims one of ``claims``' paths."""
    for path in sorted(claims):
        mine, other = claims[path], (claimed or {}).get(path)
        if not other or other.get("role") == mine["role"]:
            continue
        fixes = ["%s: %s" % (c["role"], ", ".join(c["settings"])) for c in (mine, other) if c.get("settings")]
        raise DesiredStateError(
            "role %s would also render or apply %s (%s), which role %s does: give one of them another name%s"
            % (mine["role"], mine["what"], path, other.get("role"), " (%s)" % "; ".join(fixes) if fixes else "")
        )
