# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role kind_cluster's settings that meta/argument_specs.yml cannot express.

The port plan (a host port for every NodePort of the site's plan, each used once) is checked by
its builder, kind_config.py.
"""

from __future__ import annotations

import ipaddress
import os

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check


def _ip(value):
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def validate(settings):
    c = Check(settings)
    c.matches("kind_cluster_name", r"^[a-z0-9.-]{1,50}$",
              "is not a kind cluster name: use 1 to 50 lower-case letters, digits, '.' or '-' (kind names its node "
              "containers <name>-control-plane), e.g. agw-obs")
    c.matches("kind_cluster_kind_version", r"^v[0-9]+[.][0-9]+[.][0-9]+$",
              "must be a version such as v0.32.0 (or empty to accept any kind)", empty_ok=True)
    c.matches("kind_cluster_node_image", r"^[^\s@]+@sha256:[0-9a-f]{64}$",
              "must be an image pinned by digest (name:tag@sha256:<64 hex digits>, kind v0.32.0's is "
              "kindest/node:v1.36.1@sha256:3489c767...)")
    c.not_empty("kind_cluster_kind_binary", "it is the kind executable (kind, or a path)")
    c.require(_ip(c["kind_cluster_listen_address"]),
              "kind_cluster_listen_address=%s must be an IP address (127.0.0.1 keeps the ports on this machine)."
              % (c["kind_cluster_listen_address"],))
    c.go_duration("kind_cluster_wait", "use a duration such as 90s or 5m (kind's --wait)")
    for setting in ("kind_cluster_kubeconfig", "kind_cluster_config_file"):
        value = c[setting]
        c.require(value == "" or not os.path.isdir(os.path.expanduser(str(value))),
                  "%s=%s must be a file path (or empty), not a directory." % (setting, value))
    return c.problems
