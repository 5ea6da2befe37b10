"""Shared fixtures. Service fixtures live in tests/support/ and are registered here."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# The steering repo's shared/ folder sits beside the checkout (locally and in CI).
SHARED = pathlib.Path(os.environ.get("AGW_OBS_SHARED_DIR", REPO.parent / "shared"))

pytest_plugins = [
    "support.fixtures",
    "support.prometheus",
    "support.dashboards",
    "support.gateway",
    "support.wiremock",
    "support.kube",
    "support.stack",
    "support.cluster",
]


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "schemas").is_dir():
        pytest.fail("upstream schemas not found at %s (set AGW_OBS_SHARED_DIR)" % SHARED)
    return SHARED
