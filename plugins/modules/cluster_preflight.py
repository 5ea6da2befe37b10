#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_preflight
short_description: Check that apply mode can work before anything changes
version_added: 0.1.0
description:
  - Read-only checks of everything apply mode needs where the kubernetes.core modules run, so a bad
    setting fails before the first object is applied instead of half-way through a deployment.
  - The Python C(kubernetes) library is importable by the interpreter running the module.
  - The kubeconfig exists and is readable, and the context is in it (or it has a current context).
  - The API server answers C(GET /version) with those credentials.
  - The C(helm) binary exists and its version lies in the range kubernetes.core 6.2 supports
    (3.10.0 up to, not including, 4.0.0; Helm 4 needs kubernetes.core 6.4 or later).
  - On failure, RV(cause) says which of these failed, so a calling role can name the setting to fix.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file.
      - Empty uses what kubernetes.core uses, C(K8S_AUTH_KUBECONFIG), then C(~/.kube/config), then the
        in-cluster service account.
    type: path
  context:
    description: Context in the kubeconfig; empty uses C(K8S_AUTH_CONTEXT), then the kubeconfig's current context.
    type: str
  request_timeout:
    description: Seconds to wait for the API server's answer.
    type: float
    default: 10.0
  check_cluster:
    description: Check the library, the kubeconfig, the context and the API server.
    type: bool
    default: true
  helm_binary:
    description:
      - The C(helm) program, a name looked up on C(PATH) or a path. Empty skips the Helm check
        (for a run that installs no Helm release).
    type: str
    default: helm
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same checks in check mode.
  diff_mode:
    support: none
    description: Nothing to show a diff of.
notes:
  - Runs where the kubernetes.core modules run (the controller for this collection's roles).
  - The Helm range follows kubernetes.core 6.2, which ansible 12.3.0 ships. Helm 4 support arrived in
    kubernetes.core 6.4 (issue 1038 there).
"""

EXAMPLES = r"""
- name: Check the cluster connection and helm before deploying
  agentgateway.observability.cluster_preflight:
    kubeconfig: ~/.kube/config
    context: kind-agentgateway

- name: Only the cluster (no Helm releases in this run)
  agentgateway.observability.cluster_preflight:
    helm_binary: ""
"""

RETURN = r"""
server:
  description: The API server address from the kubeconfig.
  returned: when the kubeconfig could be loaded
  type: str
  sample: https://127.0.0.1:6443
server_version:
  description: The API server's version (C(gitVersion) of C(GET /version)).
  returned: when the API server answered
  type: str
  sample: v1.36.1
kubeconfig:
  description: The kubeconfig file used; null for in-cluster configuration.
  returned: when check_cluster
  type: str
  sample: /home/me/.kube/config
kubernetes_library:
  description: Version of the Python C(kubernetes) library.
  returned: when it is installed
  type: str
  sample: 37.0.2
helm_path:
  description: Path of the C(helm) binary.
  returned: when helm_binary is set and found
  type: str
  sample: /usr/local/bin/helm
helm_version:
  description: The Helm version.
  returned: when helm_binary is set and found
  type: str
  sample: 3.17.2
cause:
  description:
    - On failure, which check failed; one of C(kubernetes_library), C(kubeconfig), C(context),
      C(unreachable), C(tls), C(unauthorized), C(forbidden), C(api), C(helm_missing), C(helm_version).
  returned: failure
  type: str
  sample: unreachable
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentgateway.observability.plugins.module_utils.kube_client import (
    KUBE_ARGUMENT_SPEC,
    KubeError,
    api_client,
    library_version,
    resolve_kubeconfig,
    server_version,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.helm_binary import (
    HelmError,
    check_helm,
)


def main():
    spec = dict(KUBE_ARGUMENT_SPEC)
    spec.update({"check_cluster": {"type": "bool", "default": True}, "helm_binary": {"type": "str", "default": "helm"}})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    result = {"changed": False}
    if params["check_cluster"]:
        result["kubeconfig"] = resolve_kubeconfig(params["kubeconfig"])
        result["kubernetes_library"] = library_version()
        try:
            client = api_client(params["kubeconfig"], params["context"])
            result["server"] = client.configuration.host
            result["server_version"] = server_version(client, params["request_timeout"])
        except KubeError as exc:
            module.fail_json(msg=exc.message, cause=exc.cause, **result)
    if params["helm_binary"]:
        try:
            result["helm_path"], result["helm_version"] = check_helm(module, params["helm_binary"])
        except HelmError as exc:
            module.fail_json(msg=exc.message, cause=exc.cause, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
