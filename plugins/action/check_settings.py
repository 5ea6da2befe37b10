# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for agentgateway.observability.check_settings: run a role's settings validator.

Documentation lives in plugins/modules/check_settings.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import message
from ansible_collections.agentgateway.observability.plugins.plugin_utils.settings_checks import VALIDATORS, check

ARGUMENT_SPEC = {
    "role": {"type": "str", "required": True, "choices": sorted({role for role, _entry in VALIDATORS})},
    "entry_point": {"type": "str", "default": "plan", "choices": sorted({entry for _role, entry in VALIDATORS})},
}


class _TaskSettings(Mapping):
    """The play's variables, each templated when a validator first reads it (the others never are)."""

    def __init__(self, templar, task_vars):
        self._templar = templar
        self._vars = task_vars
        self._cache = {}

    def __getitem__(self, name):
        if name not in self._cache:
            if name not in self._vars:
                raise KeyError(name)
            self._cache[name] = plain(self._templar.template(self._vars[name]))
        return self._cache[name]

    def __iter__(self):
        return iter(self._cache)

    def __len__(self):
        return len(self._cache)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        role, entry_point = args["role"], args["entry_point"]
        settings = _TaskSettings(self._templar, task_vars or {})
        try:
            what, problems = check(role, entry_point, settings)
        except ValueError as exc:  # a role and entry point with no validator
            raise AnsibleActionFail(str(exc))
        except KeyError as exc:
            raise AnsibleActionFail(
                "role %s: the variable %s is not defined; it comes from the role's defaults, so run the check "
                "inside the role (include_role with tasks_from: %s)" % (role, exc.args[0], entry_point))
        result.update({"changed": False, "role": role, "entry_point": entry_point, "checked": sorted(settings),
                       "problems": problems})
        if problems:
            result["failed"] = True
            result["msg"] = message(what, problems)
        return result
