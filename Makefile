# Every target installs what it needs first (stamp files under .stamps/), so a fresh clone needs only
# python3 (3.11+), npm and make. Node 22 comes from the npm package `node` (jsii and aws-local-stepfunctions need it).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= dev
PYTHON ?= python3
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)
# Synth and tests never talk to AWS: no instance-metadata probing, no CLI notices or telemetry.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

UV := .venv/bin/uv
# torch is pinned to the CPU build: taken from a local wheel folder where the machine has one, else from PyTorch's CPU index.
TORCH_SOURCE := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
LAYER_DIR := build/lambda-layer/python
PYTEST := .venv/bin/python -m pytest
PYTEST_MODELS := .venv-models/bin/python -m pytest
DJL_PACKAGES := $(patsubst model_packages/%/serving.properties,%,$(wildcard model_packages/*/serving.properties))
PYTEST_DEMO := .venv-demo/bin/python -m pytest

.PHONY: help install synth test test-unit test-models test-infra test-local deploy diff bench lint lock clean up down stage-weights build packages

help: ## list the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.stamps:
	@mkdir -p .stamps

.stamps/venv: requirements/app.txt client/pyproject.toml | .stamps
	$(PYTHON) -m venv .venv
	.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python .venv/bin/python requirements/app.txt
	$(UV) pip install -q --python .venv/bin/python --no-deps -e ./client
	@touch $@

.stamps/venv-models: requirements/models.txt .stamps/venv
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-models
	$(UV) pip sync -q --python .venv-models/bin/python $(TORCH_SOURCE) requirements/models.txt
	@touch $@

.stamps/node: package-lock.json | .stamps
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The Lambda dependencies layer: arm64 wheels for the Lambda Python runtime, no Docker needed.
.stamps/lambda-layer: requirements/lambda.txt .stamps/venv
	rm -rf build/lambda-layer
	$(UV) pip install -q --target $(LAYER_DIR) --python-platform aarch64-manylinux_2_28 --python-version 3.12 \
		--only-binary :all: --no-deps --no-compile -r requirements/lambda.txt
	@touch $@

install: .stamps/venv .stamps/venv-models .stamps/node .stamps/lambda-layer ## install every dependency (idempotent)

build: .stamps/venv .stamps/node .stamps/lambda-layer

synth: build ## synthesize every environment into cdk.out
	cdk synth --all --quiet

# ---- operator commands (ops/, docs/operations.md "Operator commands"); each needs AWS credentials
.PHONY: preflight smoke destroy packages-clean
OPS := .venv/bin/python -m ops

preflight: .stamps/venv ## is the account ready for ENV? credentials, CDK bootstrap, quotas, secrets, weights
	$(OPS) preflight --env $(ENV)

deploy: build ## deploy one environment in order (Storage, weights check or STAGE_WEIGHTS=yes, the rest): make deploy ENV=dev
	$(OPS) deploy --env $(ENV) $(if $(filter yes,$(STAGE_WEIGHTS)),--stage-weights)

smoke: .stamps/venv ## signed describe, segment and job calls against ENV's API (or API_URL=...), with latencies
	$(OPS) smoke --env $(ENV) $(if $(API_URL),--api-url $(API_URL))

destroy: build ## destroy ENV's stacks after a confirmation (CONFIRM=yes skips it); says what is retained
	$(OPS) destroy --env $(ENV) $(if $(filter yes,$(CONFIRM)),--yes)

diff: build ## show what a deploy would change: make diff ENV=dev
	cdk diff "$(ENV)/*"

test: install ## lint, then the whole offline suite: unit, model packages, infra, local end-to-end
	$(MAKE) --no-print-directory lint test-unit test-models test-infra test-local test-demo test-browser

test-unit: build ## Lambda and CDK-config unit tests (sockets blocked: tests/unit/conftest.py)
	$(PYTEST) tests/unit -q

test-models: .stamps/venv-models ## model packages (tiny random-weight models on CPU)
	$(PYTEST_MODELS) tests/models -q

test-infra: build ## synth assertions, cdk-nag, cfn-lint
	$(PYTEST) tests/infra -q

test-local: install ## the local end-to-end suite (starts its own local stack on free ports)
	$(PYTEST) tests/local -q

# mypy runs in three environments. .venv (config [tool.mypy] in pyproject.toml): app.py, lambdas/, stacks/, local/,
# openapi/, tools/, client/src, ops/, bench/ but the benchmarks marked `# venv: models`. .venv-demo's interpreter
# (gradio and its types): demo/. .venv-models' interpreter (torch, transformers... with
# their own types): model_packages/ and those benchmarks; each DJL package is a separate set of top-level modules (model.py, its
# siblings, shared/), so one run per package keeps the four model.py apart.
MYPY := .venv/bin/mypy
MYPY_MODELS := $(MYPY) --python-executable .venv-models/bin/python --cache-dir .mypy_cache/models
DJL_PACKAGES := $(patsubst model_packages/%/model.py,%,$(wildcard model_packages/*/model.py))
BENCH_MODELS := $(shell grep -l '^# venv: models' bench/*.py)

lint: .stamps/venv .stamps/venv-models .stamps/venv-demo ## ruff (lint + format check) and mypy over every package (client, ops, demo, model_packages, bench...)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(MYPY)
	$(MYPY) --python-executable .venv-demo/bin/python --cache-dir .mypy_cache/demo demo
	MYPYPATH=model_packages/shared:model_packages/whisper $(MYPY_MODELS) model_packages/shared \
		model_packages/whisper/whisper_server model_packages/stage_weights.py $(BENCH_MODELS)
	@for p in $(DJL_PACKAGES); do echo "mypy model_packages/$$p"; \
		MYPYPATH=model_packages/shared:model_packages/$$p $(MYPY_MODELS) model_packages/$$p || exit 1; done

up: install ## local mode: the whole service on 127.0.0.1 (API :8080), offline; LOCAL_ARGS='--api-port 9080 ...'
	.venv/bin/python -m local.up up --env $(ENV) $(LOCAL_ARGS)

down: ## stop local mode
	.venv/bin/python -m local.up down

# ---- the Gradio demo (demo/, docs/demo.md): its own venv .venv-demo (requirements/demo.txt + the client from the tree)
.PHONY: demo demo-down test-demo test-browser
DEMO_PORT ?= 7860
# `make demo ENV=dev` (ENV on the command line) or API_URL=... : a deployed stack; otherwise local mode
DEMO_TARGET = $(if $(API_URL),--api-url $(API_URL),$(if $(filter command line,$(origin ENV)),--env $(ENV)))

.stamps/venv-demo: requirements/demo.txt client/pyproject.toml .stamps/venv
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-demo
	$(UV) pip sync -q --python .venv-demo/bin/python requirements/demo.txt
	$(UV) pip install -q --python .venv-demo/bin/python --no-deps -e ./client
	@touch $@

demo: install .stamps/venv-demo ## the Gradio demo on http://127.0.0.1:7860, over local mode (started if not up), or ENV=dev / API_URL=...; Ctrl-C stops it
	.venv-demo/bin/python -m demo.run up --port $(DEMO_PORT) $(DEMO_TARGET) --local-env $(ENV) --local-args "$(LOCAL_ARGS)" $(DEMO_ARGS)

demo-down: ## stop the demo (and the local mode it started)
	@if [ -x .venv-demo/bin/python ]; then .venv-demo/bin/python -m demo.run down $(DEMO_ARGS); else echo "demo: not installed"; fi

test-demo: .stamps/venv-demo ## the demo's own logic (no browser)
	$(PYTEST_DEMO) tests/demo -q

test-browser: install .stamps/venv-demo ## the demo in real headless Chromium against `make demo` (Debian chromium + chromium-driver)
	$(PYTEST_DEMO) tests/browser -q

bench: install ## run every benchmark under bench/
	@for f in bench/*.py; do n=$$(basename $$f .py); echo "== bench-$$n"; $(MAKE) --no-print-directory bench-$$n; done

bench-%: install ## run one benchmark: make bench-synth
	@if grep -q '^# venv: models' bench/$*.py; then .venv-models/bin/python bench/$*.py; else .venv/bin/python bench/$*.py; fi

# The LMI container's CPython (lmi.Dockerfile's python_version); a worker refuses vendor/ built for another one.
LMI_PYTHON ?= 3.11
VENDOR_DIR := build/vendor

packages: .stamps/venv ## vendor each DJL package's pinned wheels (x86_64, the LMI CPython) and build model.tar.gz with them
	@for p in $(patsubst model_packages/%/serving.properties,%,$(wildcard model_packages/*/serving.properties)); do \
		echo "vendoring model_packages/$$p/requirements.txt into $(VENDOR_DIR)/$$p"; \
		rm -rf $(VENDOR_DIR)/$$p; \
		$(UV) pip install -q --target $(VENDOR_DIR)/$$p --python-platform x86_64-manylinux_2_28 \
			--python-version $(LMI_PYTHON) --only-binary :all: --no-deps --no-compile --require-hashes \
			-r model_packages/$$p/requirements.txt || exit 1; \
		echo $(LMI_PYTHON) > $(VENDOR_DIR)/$$p/.vendored; \
	done
	.venv/bin/python -m stacks.model_package_asset

packages-clean: ## drop the vendored wheels: synth packages requirements.txt again (DJL installs at start-up)
	rm -rf $(VENDOR_DIR)

stage-weights: .stamps/venv-models ## download weights from the Hub into the artifacts bucket, then each isolated DJL role's bundle (ROLE=a,b; needs internet and AWS)
	.venv-models/bin/python -m model_packages.stage_weights --env $(ENV) $(if $(ROLE),--roles $(ROLE)) $(STAGE_ARGS)

lock: .stamps/venv ## re-resolve the pinned requirements after editing requirements/*.in
	$(UV) pip compile -q --generate-hashes --python-version 3.11 requirements/app.in -o requirements/app.txt
	$(UV) pip compile -q --generate-hashes --python-version 3.11 $(TORCH_SOURCE) requirements/models.in -o requirements/models.txt
	$(UV) pip compile -q --generate-hashes --python-version 3.12 --python-platform aarch64-manylinux_2_28 --only-binary :all: requirements/lambda.in -o requirements/lambda.txt
# what each DJL container installs at start-up: the versions tests/models ran, with hashes; torch stays the container's
	for p in $(DJL_PACKAGES); do \
		$(UV) pip compile -q --generate-hashes --python-version 3.11 -c requirements/models.txt \
			--override requirements/djl-container.txt model_packages/$$p/requirements.in -o model_packages/$$p/requirements.txt; \
	done
	$(UV) pip compile -q --generate-hashes --python-version 3.11 requirements/demo.in client/pyproject.toml -o requirements/demo.txt

# Known vulnerabilities in every lock file (tools/audit.py; accepted ones in audit-allowlist.toml, with a reason and an
# expiry date). Needs pypi.org's JSON API and registry.npmjs.org's advisories: offline it stops with exit status 2
# and says so, which is why `make test` (offline CI) does not run it; `npm ci` skips its own audit (--no-audit) for
# the same reason, and this target is where npm packages are audited.
.PHONY: audit
audit: .stamps/venv .stamps/node ## pip-audit over the Python lock files and npm audit over package-lock.json (needs internet)
	.venv/bin/python -m tools.audit

clean: ## remove build outputs (keeps the installed environments)
	rm -rf cdk.out build .stamps/lambda-layer
