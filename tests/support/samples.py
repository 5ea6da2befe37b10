"""Sample entries shared by the unit tests of the deploy path."""

from __future__ import annotations

import copy

_RELEASE = {
    "release": "prometheus",
    "namespace": "monitoring",
    "chart": {"repo": "https://prometheus-community.github.io/helm-charts", "name": "prometheus",
              "version": "29.27.0"},
    "values": {"server": {"retention": "2d"}},
}


def release(**overrides):
    """A fresh copy of a valid Helm release entry, with top-level keys replaced by ``overrides``."""
    entry = copy.deepcopy(_RELEASE)
    entry.update(overrides)
    return entry
