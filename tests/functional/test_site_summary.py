"""The one screen site.yml ends with: URLs from the roles' NodePorts, the Grafana password file, the result.

Render mode, so no cluster: the screen says where the files are and why nothing was verified; with
agw_obs_access=url pointed at closed ports the verification fails, and the screen still comes,
with the failed result and the report files.
"""

from __future__ import annotations

import re

from support.fixtures import render_site
from support.services import free_port


def screen(stdout):
    """The lines of the last 'Summary of the run' task."""
    part = stdout[stdout.rindex("Summary of the run"):]
    return part[:part.index("PLAY RECAP")]


def test_render_mode_screen_follows_the_roles_node_ports(tmp_path):
    proc = render_site(tmp_path / "render", {"grafana_node_port": 31080,
                                             "grafana_admin_password_file": str(tmp_path / "pw")})
    text = screen(proc.stdout)
    assert "Rendered into %s (nothing applied): index.yaml" % (tmp_path / "render") in text
    assert re.search(r"Grafana +http://localhost:31080 \(NodePort 31080\)", text), text
    assert re.search(r"gateway listener +http://localhost:8080 \(NodePort 30088\)", text), text
    assert "30080" not in text
    assert "password in %s (not there" % (tmp_path / "pw") in text
    assert "Verification skipped: render mode" in text


def test_a_failed_verification_still_ends_with_the_screen(tmp_path):
    closed = "http://127.0.0.1:%d" % free_port()
    urls = {name: closed for name in ("gateway", "gateway_metrics", "mock_backend", "prometheus", "tempo", "grafana")}
    proc = render_site(tmp_path / "render", {
        "agw_obs_access": "url", "agw_obs_service_urls": urls, "traffic_enabled": False,
        "verification_grafana_password": "x", "verification_report_dir": str(tmp_path / "report"),
        "verification_deadline": 2, "verification_timeout": 1}, check=False)
    assert proc.returncode != 0
    text = screen(proc.stdout)
    assert "Verification FAILED:" in text and str(tmp_path / "report" / "verification.json") in text, text
    assert re.search(r"prometheus +%s" % re.escape(closed), text), text
    assert "password given in verification_grafana_password" in text
