#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/check_settings.py), on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: check_settings
short_description: Check a role's settings against the rules its argument spec cannot express
version_added: 0.1.0
description:
  - Runs the validator of one role of this collection (C(plugins/plugin_utils/<role>_settings.py)) over the
    role's variables as the play sees them, and fails with one message that names every variable to fix,
    its value and the fix.
  - Each role's C(tasks/plan.yml) calls it before the role builds its part of the desired state, after
    Ansible has checked the role's C(meta/argument_specs.yml) (types and choices). Nothing is written,
    applied or contacted.
  - Only the variables the validator reads are templated, each once.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  role:
    description: The role whose settings to check.
    type: str
    required: true
    choices: [agentgateway, agw_obs, existing_stack, gateway_observability, grafana, kind_cluster, loki,
              mock_backend, prometheus, tempo, traffic, verification]
  entry_point:
    description:
      - Which rules to run. C(plan) is everything the role's plan uses; C(export) only what role
        existing_stack takes from roles prometheus and grafana; C(diagnose) the support bundle's settings
        of role verification; C(main) the shared settings of role agw_obs.
    type: str
    default: plan
    choices: [diagnose, export, main, plan]
attributes:
  check_mode:
    support: full
    description: Reads variables only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing to show a diff of.
notes:
  - Run it inside the role whose settings it checks (its defaults define the variables).
"""

EXAMPLES = r"""
- name: Check the settings of role tempo (as its tasks/plan.yml does)
  agentgateway.observability.check_settings:
    role: tempo

- name: Check what role existing_stack takes from role prometheus
  agentgateway.observability.check_settings:
    role: prometheus
    entry_point: export
"""

RETURN = r"""
role:
  description: The role checked.
  returned: always
  type: str
  sample: tempo
entry_point:
  description: The rules that ran.
  returned: always
  type: str
  sample: plan
checked:
  description: The variables the validator read (names only, never values).
  returned: always
  type: list
  elements: str
  sample: [tempo_chart_repo, tempo_chart_version, tempo_retention]
problems:
  description: One message per problem, each naming the variable and the fix; empty when the settings are fine.
  returned: always
  type: list
  elements: str
  sample: ["tempo_retention=7d is not a Go duration: use hours, minutes or seconds such as 24h, 72h or 90m (Tempo has no 'd' unit: 7 days is 168h)."]
msg:
  description: On failure, every problem in one message that starts with the role.
  returned: failure
  type: str
"""
