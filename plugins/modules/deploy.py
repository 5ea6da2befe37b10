#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/deploy.py), on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy
short_description: Apply a role's Helm releases and Kubernetes objects, or render them to files
version_added: 0.1.0
description:
  - The one place where every role of this collection hands over its desired state.
  - With O(render_dir) set, writes the render layout and contacts no cluster
    C(<render_dir>/index.yaml), C(<render_dir>/helm/<namespace>/<release>.yaml) and
    C(<render_dir>/manifests/<namespace or _cluster>/<Kind>-<name>.yaml), one object per file.
    Files are only rewritten when their content changes, so a second run reports no change.
    Files this role rendered before and no longer wants are removed; other roles' entries in
    C(index.yaml) are kept.
  - Without O(render_dir), applies the entries in order (remote manifests, O(objects_first),
    O(releases), O(objects)) with M(kubernetes.core.helm) (wait, atomic, pinned chart version)
    and M(kubernetes.core.k8s) (server-side apply, field manager C(agentgateway-observability)).
    With O(state=absent) the same entries are removed in reverse order.
  - Every entry is validated before anything is written or applied, so bad input changes nothing.
    With O(validate_only) only that validation runs (each role's preflight uses it).
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  role:
    description:
      - Name of the role the entries belong to; recorded in C(index.yaml).
      - Exactly one of O(role) (with the entries as options) or O(plans) is required.
    type: str
  plans:
    description:
      - Several roles' desired states applied in one call, their Helm releases installed
        concurrently. Apply mode with O(state=present) only (not with O(render_dir) or
        O(validate_only)); each role names its entries as with O(role).
      - Every plan is validated, and every remote manifest fetched, before anything changes. Then,
        plan by plan, the namespaces and O(plans[].objects_first); then every plan's releases at
        the same time, each M(kubernetes.core.helm) run in a background job of its own (Ansible's
        async machinery; every job is waited for and its result file removed); then, plan by
        plan, the O(plans[].objects).
      - A release that fails does not stop the others; the error names every release that failed
        with its role, and the ones installed alongside. The objects after the releases are then
        not applied.
      - In check mode the releases run one after the other.
      - The site and stack playbooks use it for the roles whose releases are independent
        (prometheus, tempo, loki); see O(role) for one role at a time.
    type: list
    elements: dict
    suboptions:
      role:
        description: Name of the role.
        type: str
        required: true
      releases:
        description: As O(releases).
        type: list
        elements: dict
        default: []
      objects_first:
        description: As O(objects_first).
        type: list
        elements: dict
        default: []
      objects:
        description: As O(objects).
        type: list
        elements: dict
        default: []
      remote_manifests:
        description: As O(remote_manifests).
        type: list
        elements: dict
        default: []
  releases:
    description:
      - Helm releases, each C({release, namespace, chart, values}).
      - C(chart) holds exactly one of C(repo) (an https chart repository) or C(oci) (C(oci://host/path)),
        plus C(name) and a pinned C(version) (an exact SemVer; ranges and C(latest) are refused).
    type: list
    elements: dict
    default: []
  objects_first:
    description: Kubernetes objects applied before the releases (for example a Secret a chart reads).
    type: list
    elements: dict
    default: []
  objects:
    description: Kubernetes objects applied after the releases (for example objects of a chart's CRDs).
    type: list
    elements: dict
    default: []
  remote_manifests:
    description:
      - Manifests that stay upstream, each C({name, url, version}). Rendered as an entry in
        C(index.yaml) with its URL; fetched from the controller and applied in apply mode.
    type: list
    elements: dict
    default: []
  state:
    description: Whether the entries should exist.
    type: str
    choices: [present, absent]
    default: present
  render_dir:
    description: Absolute directory to render into. When set, no cluster is contacted.
    type: path
  kubeconfig:
    description: Path to the kubeconfig handed to the kubernetes.core modules.
    type: path
  context:
    description: Kubeconfig context handed to the kubernetes.core modules.
    type: str
  wait:
    description: Wait until releases and objects are ready.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, as a duration such as C(90s), C(5m) or C(1h).
    type: str
    default: 10m
  atomic:
    description: Roll a release back when its install or upgrade fails.
    type: bool
    default: true
  validate_only:
    description:
      - Run every check either outlet makes and return, writing nothing and contacting no cluster.
      - The entries are validated as for rendering or applying; O(claimed) is checked for entries
        another role claims; with O(render_dir), the C(index.yaml) of an earlier render is checked
        as the render outlet would check it.
      - Each role's preflight calls it, so a playbook that runs every preflight first stops before
        its first write or apply.
    type: bool
    default: false
  settings:
    description:
      - The role variables that name its releases, namespaces, charts and objects, as a mapping of
        variable name to value. Error messages name the variables whose value they quote, and
        RV(claims) records which variables name each entry.
    type: dict
    default: {}
  claimed:
    description:
      - Entries other roles claim, as returned in RV(claims) by their O(validate_only) calls
        (merged). An entry of this role at the same path is an error naming both roles' variables.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: In render mode nothing is written; in apply mode check mode is passed to kubernetes.core.
  diff_mode:
    support: full
    description: In render mode, a diff of every file that would change.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller, whatever the play's hosts.
notes:
  - Runs on the controller. The kubernetes.core modules it calls need the Python C(kubernetes)
    library and a C(helm) 3 binary there (apply mode only).
  - Remote manifests cannot be fetched air-gapped; use render mode and apply the mirrored files.
seealso:
  - module: kubernetes.core.helm
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Render the Prometheus release for review
  agentgateway.observability.deploy:
    role: prometheus
    render_dir: /tmp/render
    releases:
      - release: prometheus
        namespace: monitoring
        chart:
          repo: https://prometheus-community.github.io/helm-charts
          name: prometheus
          version: 29.27.0
        values:
          server:
            retention: 15d

- name: Apply a Secret, then the release that reads it
  agentgateway.observability.deploy:
    role: grafana
    kubeconfig: ~/.kube/config
    objects_first:
      - apiVersion: v1
        kind: Secret
        metadata: {name: grafana-admin, namespace: monitoring}
        stringData: {admin-user: admin, admin-password: "{{ grafana_admin_password }}"}
    releases: "{{ grafana_releases }}"
  no_log: true

- name: Install three roles' releases at the same time (each role's Service after its release)
  agentgateway.observability.deploy:
    kubeconfig: ~/.kube/config
    plans:
      - role: prometheus
        releases: "{{ prometheus_releases }}"
      - role: tempo
        releases: "{{ tempo_releases }}"
        objects: "{{ tempo_services }}"
      - role: loki
        releases: "{{ loki_releases }}"
"""

RETURN = r"""
mode:
  description: C(render), C(apply), or C(validate) with O(validate_only).
  returned: always
  type: str
  sample: render
files:
  description: Every file this role renders, relative to O(render_dir) (C(index.yaml) excluded).
  returned: in render mode, and with O(validate_only)
  type: list
  elements: str
  sample: [helm/monitoring/prometheus.yaml]
changed_files:
  description: Files written or removed by this run (or that would be, in check mode).
  returned: in render mode
  type: list
  elements: str
  sample: [helm/monitoring/prometheus.yaml, index.yaml]
removed_files:
  description: Files of this role that were rendered before and are no longer wanted.
  returned: in render mode
  type: list
  elements: str
  sample: []
render_dir:
  description: The directory rendered into.
  returned: in render mode
  type: str
  sample: /tmp/render
claims:
  description:
    - Every release and object of this role by its render path (which identifies it in apply mode
      too), with the role, a description and the O(settings) that name it. Merge these over the
      roles to pass O(claimed) to the next role.
  returned: with O(validate_only)
  type: dict
  sample:
    helm/monitoring/prometheus.yaml:
      role: prometheus
      what: release prometheus in namespace monitoring
      settings: [prometheus_namespace, prometheus_release_name]
applied:
  description: Each step handed to kubernetes.core, in order, with whether it changed anything.
  returned: in apply mode
  type: list
  elements: dict
  sample: [{module: kubernetes.core.helm, target: release monitoring/prometheus, changed: true}]
roles:
  description: The roles of O(plans), in order (each entry of RV(applied) then names its C(role) too).
  returned: with O(plans)
  type: list
  elements: str
  sample: [prometheus, tempo, loki]
namespaces:
  description: The namespaces the applied entries live in.
  returned: in apply mode
  type: list
  elements: str
  sample: [monitoring]
kept_namespaces:
  description: With O(state=absent) in apply mode, namespaces of the role that were not removed, with the reason.
  returned: when a removal kept a namespace
  type: dict
  sample: {monitoring: "holds ConfigMap/my-settings"}
"""
