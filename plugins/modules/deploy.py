#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/deploy.py), on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy
short_description: Check the site's desired state, then apply it or render it to files
version_added: 0.1.0
description:
  - The one place the roles of this collection hand their desired state to. Each role's C(tasks/plan.yml)
    builds its part (Helm releases, Kubernetes objects, the NodePorts it claims); C(site.yml) hands every
    part to one call (O(plans)). A role used on its own hands its own part, with the parts planned
    before it in the play as O(planned).
  - First every part is checked, then all of them together, before anything is written, applied or
    contacted. A release needs a pinned chart version (an exact SemVer, no range, no C(latest)), exactly
    one of C(repo) or C(oci), and DNS names; an object needs a kind, a DNS name and a namespace unless
    cluster-scoped. Two roles may not render or apply the same release or object, and no NodePort may be
    claimed by two settings. Messages name the role variables behind the names (O(plans[].settings)).
  - With O(render_dir) set, writes every file of every part at once and contacts no cluster
    C(<render_dir>/index.yaml), C(<render_dir>/helm/<namespace>/<release>.yaml) and
    C(<render_dir>/manifests/<namespace or _cluster>/<Kind>-<name>.yaml), one object per file. Files are
    only rewritten when their content changes, so a second run reports no change. Files the deployed roles
    rendered before and no longer want are removed; other roles' entries in C(index.yaml) are kept, and a
    path another role rendered is refused.
  - Without O(render_dir), it first checks the cluster connection and helm (M(agentgateway.observability.cluster_preflight),
    see O(cluster_check)), then applies with M(kubernetes.core.helm) (wait, atomic, pinned
    chart version) and M(kubernetes.core.k8s) (server-side apply, field manager C(agentgateway-observability)), in this order,
    every missing namespace (M(agentgateway.observability.managed_namespace), labelled as the collection's),
    each role's remote manifests and O(plans[].before_releases), the releases in waves (wave n holds every
    role's n-th release, so a role's releases go in order and different roles' releases go together, see
    O(concurrent)), then each role's O(plans[].after_releases).
  - With O(state=absent) the same entries are removed in reverse order, the namespaces last, which are removed
    only where the collection created them and nothing else is left in them.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  plans:
    description:
      - The parts of the desired state to render or apply, one per role, in the site's order.
      - Exactly one of O(plans) or O(role) (one role's entries given as options) is required.
    type: list
    elements: dict
    suboptions:
      role:
        description: Name of the role the part belongs to; recorded in C(index.yaml).
        type: str
        required: true
      releases:
        description:
          - Helm releases, each C({release, namespace, chart, values}).
          - C(chart) holds exactly one of C(repo) (an https chart repository) or C(oci) (C(oci://host/path)),
            plus C(name) and a pinned C(version).
        type: list
        elements: dict
        default: []
      before_releases:
        description: Kubernetes objects applied before the releases (for example a Secret a chart reads).
        type: list
        elements: dict
        default: []
        aliases: [objects_first]
      after_releases:
        description: Kubernetes objects applied after the releases (for example objects of a chart's CRDs).
        type: list
        elements: dict
        default: []
        aliases: [objects]
      remote_manifests:
        description:
          - Manifests that stay upstream, each C({name, url, version}). Rendered as an entry in C(index.yaml)
            with its URL; fetched from the controller and applied in apply mode (an https URL, an http mirror
            or a C(file:///) copy).
        type: list
        elements: dict
        default: []
      settings:
        description:
          - The role variables that name the part's releases, namespaces, charts and objects, as a mapping
            of variable name to value. Error messages name the variables whose value they quote.
        type: dict
        default: {}
      node_ports:
        description:
          - The NodePorts the part's Services use, each C({setting, port, what}); checked across every part
            (each in Kubernetes' range, each used by one setting only).
        type: list
        elements: dict
        default: []
      host_ports:
        description:
          - Host ports claimed for a NodePort (the kind cluster's port plan), each C({setting, url or host_port,
            node_port_setting}).
        type: list
        elements: dict
        default: []
      generated_secrets:
        description:
          - Keys of the part's Secrets filled on the controller when they are written or applied, each
            C({namespace, name, key, file, length, remove_on_absent}). The value is read from C(file), or
            generated once into it (mode 0600, letters and digits, the format of M(ansible.builtin.password)'s
            files); in check mode a missing file is not created. With O(state=absent) in apply mode, C(file)
            is removed when C(remove_on_absent).
        type: list
        elements: dict
        default: []
      pod_security:
        description:
          - The Pod Security level the part's workloads meet in each namespace, a mapping of namespace to
            C(restricted), C(baseline), C(privileged), or C(unmanaged) for a namespace the user owns. A
            namespace gets the most permissive level any part names (C(unmanaged) wins), see
            O(pod_security_labels).
        type: dict
        default: {}
  planned:
    description:
      - Parts planned earlier in the same run that this call does not deploy (a role used on its own after
        others in a play). They are checked together with O(plans), so two roles on one release, object or
        NodePort are found, and nothing of them is written or applied.
    type: list
    elements: dict
    default: []
  role:
    description: One role's entries given as the options below instead of O(plans).
    type: str
  releases:
    description: With O(role), as O(plans[].releases).
    type: list
    elements: dict
    default: []
  before_releases:
    description: With O(role), as O(plans[].before_releases).
    type: list
    elements: dict
    default: []
    aliases: [objects_first]
  after_releases:
    description: With O(role), as O(plans[].after_releases).
    type: list
    elements: dict
    default: []
    aliases: [objects]
  remote_manifests:
    description: With O(role), as O(plans[].remote_manifests).
    type: list
    elements: dict
    default: []
  settings:
    description: With O(role), as O(plans[].settings).
    type: dict
    default: {}
  generated_secrets:
    description: With O(role), as O(plans[].generated_secrets).
    type: list
    elements: dict
    default: []
  pod_security_labels:
    description:
      - Which namespaces carry the Pod Security labels (C(pod-security.kubernetes.io/enforce), C(warn) and
        C(audit)) of their level (O(plans[].pod_security)).
      - C(none) - no labels. C(created) - the namespaces apply mode creates, and the Namespace objects render
        mode writes (role C(agw_obs) in C(index.yaml) when no part renders the namespace itself); with
        O(relabel_namespaces), the namespaces the collection created earlier take the labels of their level now.
        A namespace the user created keeps its labels. C(all) - as C(created), and with O(relabel_namespaces) the
        Pod Security labels of every existing namespace of the site that is not C(unmanaged) are set too.
    type: str
    choices: [none, created, all]
    default: none
  relabel_namespaces:
    description:
      - Apply mode with O(inventory_namespace) - set the Pod Security labels of existing namespaces as
        O(pod_security_labels) says. Only a run of the whole site should (C(agw_obs) passes it then) - the levels
        of a part alone could make a shared namespace stricter than its other workloads need.
      - Render mode never narrows a namespace other roles' files still use - its level there is the most
        permissive of this run's and the one its Namespace file holds.
    type: bool
    default: false
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
    description: Roll a release back when its install or upgrade fails (Helm's C(--atomic) implies waiting).
    type: bool
    default: true
  concurrent:
    description:
      - Run the releases of one wave at the same time, each M(kubernetes.core.helm) run a background job of
        its own (Ansible's async machinery; every job is waited for and its result file removed). A release
        that fails does not stop the others of its wave; the error names every release that failed with its
        role, and the ones installed alongside; nothing after the wave is applied.
      - false, and check mode, run them one after the other.
    type: bool
    default: true
  cluster_check:
    description:
      - In apply mode, check the Python C(kubernetes) library, the kubeconfig and context, that the API server
        answers and that helm is Helm 3 before the first change; a failure names the setting to fix
        (C(agw_obs_kubeconfig), C(agw_obs_kube_context), C(agw_obs_helm_binary)).
    type: bool
    default: true
  chart_mirror:
    description:
      - An air-gapped chart mirror, an http(s) chart repository URL or an C(oci://) prefix that serves every
        chart under its upstream name and version. Each release's chart is taken from it; C(index.yaml)
        records where it came from (C(mirror_of)).
    type: str
    default: ""
  helm_binary:
    description: The helm 3 program M(kubernetes.core.helm) runs; empty for its default.
    type: str
    default: ""
  validate_only:
    description:
      - Run every check either outlet makes and return, writing nothing and contacting no cluster; with
        O(render_dir), the C(index.yaml) of an earlier render is checked as the render outlet would.
    type: bool
    default: false
  inventory_namespace:
    description:
      - Apply mode, day two. When set, the run keeps the inventory of what the collection created (the
        ConfigMap C(agentgateway-observability-inventory) in this namespace), holds the lock (the Lease
        C(agentgateway-observability-lock), see M(agentgateway.observability.site_lock)) from before its
        first change to its end, settles releases an interrupted run left pending (O(recover_pending)) and
        prunes what the inventory holds for O(prune_roles) and the desired state lacks (O(prune)).
      - Order, O(state=present) - lock; read the inventory; recover; prune (objects, releases, then the
        collection's empty namespaces); record the new entries; apply; write the inventory as the desired
        state; give the lock back (on failure too). With O(state=absent) the inventory's entries of
        O(prune_roles) go too, and the inventory and the lock are removed before the namespaces.
      - Check mode takes no lock and writes nothing; RV(pruned) and RV(recovered) say what a run would do.
      - Never pruned - remote manifests (shared CRDs) and the CRDs charts install; an object without the
        label C(app.kubernetes.io/managed-by=agentgateway.observability); a release whose chart is no longer
        the recorded one; a namespace that the collection did not create or that is not empty.
      - Empty (the default) - none of this; the module applies and removes exactly the given parts.
    type: str
    default: ""
  prune:
    description: With O(inventory_namespace), remove stale entries; C(false) keeps them (and in the inventory).
    type: bool
    default: true
  prune_roles:
    description:
      - The roles whose inventory entries this call may prune (default, the deployed roles). site.yml passes
        every role of the site in either stack mode, so a switch of mode removes the other mode's entries.
    type: list
    elements: str
  recover_pending:
    description:
      - With O(inventory_namespace), roll a release of the inventory or the desired state that is
        C(pending-install), C(pending-upgrade) or C(pending-rollback) back to its last deployed revision
        (uninstall it when it never deployed) before the first change. C(false) fails, naming the release
        and the fix.
      - This runs under the lock, so no other run of the collection works on the release. A C(helm) process
        of a killed run may still be running (background jobs outlive the playbook) until its wait timeout;
        wait that long after killing a run, or stop those processes, before running again.
    type: bool
    default: true
  lock_timeout:
    description: How long to wait for another run's lock, as a duration (C(90s), C(2m)); then the run fails naming the holder.
    type: str
    default: 2m
  lock_lease:
    description: How long the lock holds without renewal (renewed between steps and while jobs run).
    type: str
    default: 60s
attributes:
  check_mode:
    support: full
    description: In render mode nothing is written; in apply mode check mode is passed to kubernetes.core.
  diff_mode:
    support: full
    description: A diff of every file (render) or object (apply) that would change; a Secret's values are hidden.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller, whatever the play's hosts.
notes:
  - Runs on the controller. The kubernetes.core modules it calls need the Python C(kubernetes)
    library and a C(helm) 3 binary there (apply mode only).
  - Remote manifests cannot be fetched air-gapped; use render mode and apply the mirrored files.
  - The result never holds a Secret's values, so the task needs no C(no_log) for them.
seealso:
  - module: kubernetes.core.helm
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Render one role's release for review
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

- name: Apply the parts the roles planned (what roles/agw_obs/tasks/deploy.yml does)
  agentgateway.observability.deploy:
    kubeconfig: ~/.kube/config
    plans: "{{ _agw_obs_plans.values() | list }}"

- name: A Secret with a generated password, then the release that reads it
  agentgateway.observability.deploy:
    kubeconfig: ~/.kube/config
    plans:
      - role: grafana
        before_releases:
          - apiVersion: v1
            kind: Secret
            metadata: {name: grafana-admin, namespace: monitoring}
            data: {admin-user: YWRtaW4=}
        generated_secrets:
          - {namespace: monitoring, name: grafana-admin, key: admin-password,
             file: ~/.agentgateway-observability/default/grafana-admin-password, length: 32}
        releases: "{{ grafana_releases }}"
"""

RETURN = r"""
mode:
  description: C(render), C(apply), or C(validate) with O(validate_only).
  returned: always
  type: str
  sample: render
roles:
  description: The roles of the parts rendered or applied, in order.
  returned: always
  type: list
  elements: str
  sample: [prometheus, tempo, grafana]
files:
  description: Every file of the parts, relative to O(render_dir) (C(index.yaml) excluded).
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
  description:
    - In render mode, files the deployed roles rendered before and no longer want.
    - In apply mode with O(state=absent), the controller-side files of O(plans[].generated_secrets) removed.
  returned: in render mode; in apply mode when a file was removed
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
    - Every release and object of the checked parts by its render path (which identifies it in apply mode
      too), with the role, a description and the O(plans[].settings) that name it.
  returned: with O(validate_only)
  type: dict
  sample:
    helm/monitoring/prometheus.yaml:
      role: prometheus
      what: release prometheus in namespace monitoring
      settings: [prometheus_namespace, prometheus_release_name]
node_ports:
  description: The NodePorts of the checked parts.
  returned: with O(validate_only)
  type: list
  elements: dict
  sample: [{setting: prometheus_node_port, port: 30090, what: Prometheus, role: prometheus}]
host_ports:
  description: The host port claims of the checked parts.
  returned: with O(validate_only)
  type: list
  elements: dict
  sample: [{setting: traffic_base_url, url: "http://localhost:8080", node_port_setting: gateway_observability_listener_node_port}]
pruned:
  description: What this run pruned (in check mode, would prune), as C(release ns/name), C(Kind ns/name), C(namespace n).
  returned: in apply mode with O(inventory_namespace)
  type: list
  elements: str
  sample: [release monitoring/prometheus, ConfigMap monitoring/agentgateway-datasource-tempo]
prune_kept:
  description: Stale entries left in place, each with the reason.
  returned: in apply mode with O(inventory_namespace)
  type: dict
  sample: {namespace monitoring: "holds ConfigMap/my-settings"}
recovered:
  description: Releases an interrupted run left pending, and what settled them.
  returned: in apply mode with O(inventory_namespace)
  type: list
  elements: str
  sample: ["release monitoring/tempo: was pending-install, uninstalled (never deployed)"]
applied:
  description: Each step handed to kubernetes.core, in order, with its role and whether it changed anything.
  returned: in apply mode
  type: list
  elements: dict
  sample: [{module: kubernetes.core.helm, target: release monitoring/prometheus, changed: true, role: prometheus}]
namespaces:
  description: The namespaces the applied entries live in.
  returned: in apply mode
  type: list
  elements: str
  sample: [monitoring]
kept_namespaces:
  description: With O(state=absent) in apply mode, namespaces that were not removed, with the reason.
  returned: when a removal kept a namespace
  type: dict
  sample: {monitoring: "holds ConfigMap/my-settings"}
"""
