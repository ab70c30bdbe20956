# Two commands matter: `make dev` (the chat on localhost) and `make test` (every test).
# Everything else is a building block. Targets skip work that is already done.
#
# Versions: uv.lock is the only source (README, "Versions"). uv, at the version pyproject's
# [tool.uv] required-version names, is installed once into .build/uv-<version>/ and syncs
# each venv exactly to the lock (`--locked`: a pyproject.toml edited without `make lock`
# fails here rather than install something else). A venv is re-synced when uv.lock or
# pyproject.toml changes; a stamp per set says what it holds:
#   .venv/.stamp-local  the runtime dependencies + the local extra (`make dev`)
#   .venv/.stamp-test   + the dev extra: CDK, Playwright, cfn-lint, pytest... (`make test`)
#   .venv/.stamp-bench  + the bench extra (`make bench`)
# A bigger set serves a smaller one; syncing a smaller one exactly drops the bigger stamps.
# .venv313 is Lambda's Python (cdk.json's python_runtime, from pyenv), from the same lock:
# `make test` runs the functions' tests there too. node_modules is rebuilt when
# package.json changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
AUTH ?= none
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
UV := .build/uv-$(UV_VERSION)/bin/uv
# uv never downloads a Python: the venvs use this machine's interpreters.
export UV_PYTHON_DOWNLOADS := never
LOCKED := uv.lock pyproject.toml
SYNC = UV_PROJECT_ENVIRONMENT=$(1) $(UV) sync --locked --quiet --python $(2)
# A stamp newer than the lock and pyproject: that set is installed as locked.
fresh = { [ -f $(1) ] && [ $(1) -nt uv.lock ] && [ $(1) -nt pyproject.toml ]; }
STAMPS := $(VENV)/.stamp-local $(VENV)/.stamp-test $(VENV)/.stamp-bench

# Lambda's Python: cdk.json's python_runtime (what the stack deploys), from pyenv.
LAMBDA_PYTHON := $(shell sed -n 's/.*"python_runtime": "\([0-9.]*\)".*/\1/p' cdk.json)
VENV_LAMBDA := .venv$(subst .,,$(LAMBDA_PYTHON))
LAMBDA_INTERPRETER = $(shell PYENV_VERSION=$$(pyenv latest $(LAMBDA_PYTHON) 2>/dev/null) \
	pyenv which python 2>/dev/null || command -v python$(LAMBDA_PYTHON))

.PHONY: dev test lint synth deploy destroy bootstrap bench soak clean layers lock floors

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		--target .build/uv-$(UV_VERSION) uv==$(UV_VERSION)

$(VENV)/.stamp-local: $(LOCKED) | $(UV)
	@if $(call fresh,$(VENV)/.stamp-test) || $(call fresh,$(VENV)/.stamp-bench); then \
		touch $@; \
	else \
		rm -f $(STAMPS) && $(call SYNC,$(VENV),$(PYTHON)) --extra local && touch $@; \
	fi

$(VENV)/.stamp-test: $(LOCKED) | $(UV)
	@if $(call fresh,$(VENV)/.stamp-bench); then \
		touch $@; \
	else \
		rm -f $(STAMPS) && $(call SYNC,$(VENV),$(PYTHON)) --extra dev && touch $@; \
	fi

$(VENV)/.stamp-bench: $(LOCKED) | $(UV)
	rm -f $(STAMPS)
	$(call SYNC,$(VENV),$(PYTHON)) --extra dev --extra bench
	touch $@

# The functions' tests on Lambda's Python: the runtime dependencies, the local gateway's
# moto and what the tests need, no CDK.
$(VENV_LAMBDA)/.stamp: $(LOCKED) cdk.json | $(UV)
	@test -n "$(LAMBDA_INTERPRETER)" || { echo "no Python $(LAMBDA_PYTHON) (pyenv install $(LAMBDA_PYTHON))"; exit 1; }
	$(call SYNC,$(VENV_LAMBDA),$(LAMBDA_INTERPRETER)) --extra local --extra test
	touch $@

node_modules/.stamp-install: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.stamp-test node_modules/.stamp-install

dev: $(VENV)/.stamp-local
	$(PY) -m local_gateway --port $(PORT) --auth $(AUTH)

# After editing pyproject.toml's dependencies: re-resolve uv.lock (the only place versions
# are written), then commit both.
lock: | $(UV)
	$(UV) lock

# The functions' own packages (httptools; PyJWT, cryptography) at uv.lock's versions, built
# for Lambda's arm64 Python and kept in .build/layers/: synth builds them on first use; this
# does it ahead of time.
layers: $(VENV)/.stamp-test
	$(PY) infra/layers.py

test: $(VENV)/.stamp-test $(VENV_LAMBDA)/.stamp node_modules/.stamp-install
	$(UV) lock --check --offline --quiet
	$(VENV)/bin/ruff check .
	node --test tests/frontend/
	$(VENV)/bin/pytest
	$(VENV_LAMBDA)/bin/pytest tests/backend -q -p no:cacheprovider

# The lowest versions pyproject.toml allows (uv's lowest-direct resolution, not the lock),
# in a venv of their own: each floor is a version the backend and gateway tests pass on.
floors: node_modules/.stamp-install | $(UV)
	rm -rf .venv-floor
	$(UV) venv --quiet --python $(PYTHON) .venv-floor
	$(UV) pip install --quiet --python .venv-floor --resolution lowest-direct -e '.[local,test]'
	$(UV) pip list --python .venv-floor --format freeze | grep -iE '^(boto3|botocore|moto|aiohttp|werkzeug|httptools|pyjwt|aws-lambda-powertools|cryptography)=='
	.venv-floor/bin/pytest tests/backend tests/gateway -q -p no:cacheprovider

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .

synth: $(VENV)/.stamp-test node_modules/.stamp-install
	npx cdk synth --quiet

deploy: $(VENV)/.stamp-test node_modules/.stamp-install
	npx cdk deploy

bootstrap: $(VENV)/.stamp-test node_modules/.stamp-install
	npx cdk bootstrap

destroy: $(VENV)/.stamp-test node_modules/.stamp-install
	npx cdk destroy

# The benches also run the Flask-SocketIO baseline (bench/flask_baseline.py): its
# packages are the `bench` extra, not the chat's.
bench: $(VENV)/.stamp-bench
	$(PY) bench/run_all.py

# Not in CI: 200 clients in 5 rooms through python -m local_gateway for 60 s, each
# sending every 20 s (10 messages/s, 400 deliveries/s). Prints bench/e2e.py's JSON and
# fails unless nothing was lost, duplicated or delivered to another room. The short
# version runs in `make test` (tests/gateway/test_load.py).
SOAK_CLIENTS ?= 200
SOAK_ROOMS ?= 5
SOAK_SECONDS ?= 60
SOAK_RATE ?= 0.05
soak: $(VENV)/.stamp-local
	$(PY) bench/e2e.py --json --clients $(SOAK_CLIENTS) --rooms $(SOAK_ROOMS) \
		--rate-per-client $(SOAK_RATE) --seconds $(SOAK_SECONDS) --grace 60

# The deploy rehearsal: synthesize the app (both auth modes) and run every function from its
# code asset and layers under awslambdaric on Python 3.13, against the local gateway's
# Runtime API; one line per function and a verdict. make test runs it (tests/rehearsal).
.PHONY: rehearse
rehearse: $(VENV)/.stamp-test node_modules/.stamp-install
	$(PY) -m local_gateway.rehearse

clean:
	rm -rf $(VENV) $(VENV_LAMBDA) .venv-floor node_modules cdk.out .pytest_cache .ruff_cache \
		.hypothesis .build
