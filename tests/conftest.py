"""Shared fixtures. Service fixtures live in tests/support/ and are registered here."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

# Ansible's collection finder before anything imports the collection (as ansible-test units does):
# every ansible_collections import goes through it, and the collection's filter plugins resolve
# when tests template the roles' variables in-process (support.planner).
from ansible.plugins.loader import init_plugin_loader  # noqa: E402 pylint: disable=wrong-import-position

init_plugin_loader([str(REPO / ".venv" / "collections")])

from support.schemas import SchemasError, locate_schemas  # noqa: E402 pylint: disable=wrong-import-position
# The tutorial the collection started from (its wrong values are guarded by tests). It sits in the
# folder beside the checkout that also holds the upstream schemas; a plain clone does not have it.
SEED_TUTORIAL = pathlib.Path(
    os.environ.get("AGW_OBS_SEED_TUTORIAL", REPO.parent / "shared" / "seed" / "observability-stack-blog.md"))

pytest_plugins = [
    "support.fixtures",
    "support.session",
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
def schemas_dir():
    """The pinned upstream schemas (CRDs, proxy config, chart values): see scripts/schemas.py."""
    try:
        return locate_schemas()
    except SchemasError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def seed_tutorial():
    """The tutorial's text, for the tests that prove its invented settings are refused."""
    if not SEED_TUTORIAL.is_file():
        pytest.skip("the seed tutorial is not beside this checkout (%s; set AGW_OBS_SEED_TUTORIAL): "
                    "it is not published with the collection" % SEED_TUTORIAL)
    return SEED_TUTORIAL


# The files that take longest (measured with --durations), started first: `--dist loadfile` hands files to
# the two workers in collection order, and a long file collected last keeps one worker busy minutes after
# the other one ran out of work. The order only changes when each file starts, never what runs.
LONGEST_FIRST = (
    "test_pod_security_controlplane.py", "test_stack_mode_switch.py", "test_apply_helm.py",
    "test_site_bad_input.py", "test_interrupted_and_concurrent_runs.py", "test_diagnose.py",
    "test_render_site.py", "test_molecule_and_examples.py", "test_grafana_render.py", "test_dashboards.py",
    "test_demo_panels.py", "test_verification_role.py", "test_existing_stack.py", "test_access_controlplane.py",
    "test_packaging.py", "test_site_summary.py", "test_existing_stack_apply.py",
)


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
