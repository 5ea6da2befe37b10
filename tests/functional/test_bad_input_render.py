"""Bad input to any role stops site.yml in render mode before anything is written, naming the variable.

Every check the deploy path makes is triggered from a role variable (tests/support/bad_input.py).
Each role's preflight checks its variables by name, then hands its desired state to the deploy
action with ``validate_only``; site.yml runs every preflight before any role deploys.
"""

from __future__ import annotations

import pytest

from support.bad_input import CASES
from support.fixtures import assert_rejected_before_writing, render_site, snapshot


@pytest.mark.parametrize("extra_vars, names", CASES)
def test_render_mode_writes_nothing(tmp_path, extra_vars, names):
    out = tmp_path / "render"
    assert_rejected_before_writing(render_site(out, extra_vars, check=False), out, *names)


def test_an_earlier_render_is_checked_before_anything_is_rewritten(tmp_path):
    """The render outlet refuses a path another role rendered before (index.yaml): so does the check.

    Renamed mock backend, its old Service name given to the gateway metrics Service: deploy would
    stop at gateway_observability, after prometheus, tempo and grafana had rewritten their files.
    """
    render_site(tmp_path)
    before = snapshot(tmp_path)
    proc = render_site(tmp_path, {"mock_backend_name": "mock-two", "gateway_observability_metrics_service_name": "mock-openai"},
                       check=False)
    assert proc.returncode != 0
    assert "manifests/agentgateway-system/Service-mock-openai.yaml is already rendered by role mock_backend" in proc.stdout
    assert "named by agw_obs_gateway_namespace, gateway_observability_metrics_service_name" in proc.stdout
    assert snapshot(tmp_path) == before


def test_the_same_input_without_the_mistake_renders(tmp_path):
    """Guard for the cases above: they fail because of the bad value, not because site.yml fails anyway."""
    render_site(tmp_path, {"agw_obs_loki_enabled": True, "grafana_extra_dashboard_files": []})
    assert (tmp_path / "helm" / "monitoring" / "loki.yaml").is_file()
