"""Helm releases through kubernetes.core.helm and the real helm 3.17.2, against the real control plane.

The charts are TEST charts from a local repository (support.chartrepo) under the upstream names
and pinned versions, reached through agw_obs_chart_repository_mirror. With waiting on (the test
chart has nothing that needs a node to become ready) releases are atomic: a release whose upgrade
fails is rolled back to the last good revision, values included.
"""

from __future__ import annotations

import json

import pytest
import yaml

from support.kube import apply_site, helm

pytestmark = pytest.mark.services


def prometheus_release(kubeconfig):
    return json.loads(helm(kubeconfig, "list", "-n", "monitoring", "-o", "json", "--filter", "^prometheus$"))


def test_install_noop_upgrade_atomic_rollback_and_uninstall(controlplane, test_chart_repo):
    kubeconfig = controlplane.kubeconfig_path
    settings = {"agw_obs_chart_repository_mirror": test_chart_repo["url"], "agw_obs_wait": True,
                "agw_obs_wait_timeout": "60s"}
    tags = ("--tags", "prometheus")

    first = apply_site(kubeconfig, settings, args=tags)
    assert "changed=" in first.stdout and prometheus_release(kubeconfig)[0]["status"] == "deployed"
    assert prometheus_release(kubeconfig)[0]["chart"] == "prometheus-29.27.0"
    revision = prometheus_release(kubeconfig)[0]["revision"]

    again = apply_site(kubeconfig, settings, args=tags)
    assert " changed=0 " in again.stdout, "an unchanged release is not upgraded"
    assert prometheus_release(kubeconfig)[0]["revision"] == revision

    broken = apply_site(kubeconfig, dict(settings, prometheus_extra_values={"testChartFail": True}), args=tags,
                        check=False)
    assert broken.returncode != 0
    assert "kubernetes.core.helm failed for release monitoring/prometheus (role prometheus)" in broken.stdout
    history = json.loads(helm(kubeconfig, "history", "prometheus", "-n", "monitoring", "-o", "json"))
    assert [h["status"] for h in history][-2:] == ["failed", "deployed"], history
    assert "Rollback to %s" % revision in history[-1]["description"]
    values = yaml.safe_load(helm(kubeconfig, "get", "values", "prometheus", "-n", "monitoring", "-o", "yaml"))
    assert "testChartFail" not in values, "the rolled-back release has the last good values"

    gone = apply_site(kubeconfig, dict(settings, agw_obs_state="absent"), args=tags)
    assert "changed=" in gone.stdout
    assert prometheus_release(kubeconfig) == []
