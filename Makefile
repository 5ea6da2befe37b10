# agentgateway.observability: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
# prometheus, promtool, etcd, kube-apiserver, kube-controller-manager and helm, built by `make setup`
export AGW_OBS_TOOLS_DIR ?= $(CURDIR)/.cache/tools
export PATH := $(VENV)/bin:$(AGW_OBS_TOOLS_DIR)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(VENV)/collections
export ANSIBLE_NOCOLOR := 1

.PHONY: setup test lint sanity pytest molecule render demo clean schemas docs ee

## setup: idempotent; .venv/, Debian java/npm, npm WireMock and helm, the Go-built upstream tools, the collection by FQCN
setup:
	@scripts/setup.sh

## test: setup, then every test layer (this is what .ci/run calls)
test: setup lint sanity pytest molecule

lint: setup
	yamllint --strict .
	antsibull-changelog lint
	ansible-lint --profile production --offline

sanity: setup
	@scripts/sanity.sh

pytest: setup
	python3 scripts/schemas.py --if-missing
	pytest

## molecule: the scenarios that run here (default: the site rendered and verified against local services;
## apiserver: apply mode against a real control plane); kind needs Docker, so only its syntax here
MOLECULE := NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 molecule
molecule: setup
	python3 scripts/schemas.py --if-missing
	$(MOLECULE) test -s default
	$(MOLECULE) syntax -s kind
	$(MOLECULE) test -s apiserver

## schemas: download the pinned upstream schemas (sha256-checked) into .cache/schemas; the tests use
## AGW_OBS_SCHEMAS_DIR or the upstream schemas folder beside the checkout instead when there.
## AGW_OBS_SCHEMAS_MIRROR=<base URL> fetches <base>/<path> (air-gapped mirror)
schemas:
	python3 scripts/schemas.py

## docs: rewrite the variable reference docs/variables/ from the roles' meta/argument_specs.yml
docs: setup
	python3 scripts/variables-doc.py

## render DIR=/abs/or/relative/dir [ARGS='-e k=v ...']: site.yml in render mode, no cluster contacted
render: setup
	@if [ -z "$(DIR)" ]; then echo "usage: make render DIR=<directory> [ARGS='-e key=value ...']" >&2; exit 2; fi
	ansible-playbook site.yml -e agw_obs_render_dir=$(abspath $(DIR)) $(ARGS)

## demo [ARGS='-e k=v ...']: setup, a kind cluster, site.yml (stack, gateway, traffic, verification, the summary screen).
## Without a container engine or kind it stops at once (scripts/demo-preflight.sh), before setup.
DEMO_CLUSTER ?= agw-obs
DEMO_KUBECONFIG ?= $(CURDIR)/.cache/kind/$(DEMO_CLUSTER).kubeconfig
DEMO_VARS = -e agw_obs_kubeconfig=$(DEMO_KUBECONFIG) -e agw_obs_kube_context=kind-$(DEMO_CLUSTER)
demo:
	@scripts/demo-preflight.sh
	@$(MAKE) --no-print-directory setup
	ansible-playbook playbooks/kind.yml -e kind_cluster_name=$(DEMO_CLUSTER) -e kind_cluster_kubeconfig=$(DEMO_KUBECONFIG) $(ARGS)
	ansible-playbook site.yml $(DEMO_VARS) $(ARGS)

## ee: the execution environment (execution-environment.yml): the collection tarball and helm staged,
## the build context written, and the image built when podman or docker is there
EE_VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
ee: setup
	rm -rf .cache/ee && mkdir -p .cache/ee/staging
	ansible-galaxy collection build --output-path .cache/ee .
	cp .cache/ee/agentgateway-observability-$(EE_VERSION).tar.gz .cache/ee/staging/agentgateway-observability.tar.gz
	cp "$$(command -v helm)" .cache/ee/staging/helm
	ansible-builder create -f execution-environment.yml -c .cache/ee/context
	@engine=$$(command -v podman >/dev/null && echo podman || { command -v docker >/dev/null && echo docker; } || true); \
	if [ -n "$$engine" ]; then \
	  ansible-builder build --container-runtime "$$engine" -f execution-environment.yml -c .cache/ee/context \
	    -t agentgateway-observability-ee:$(EE_VERSION); \
	else echo "make ee: no podman or docker here; the build context is in .cache/ee/context"; fi

clean:
	rm -rf .cache tests/output .pytest_cache
