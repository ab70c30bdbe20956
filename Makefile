# Two commands matter: `make dev` (the chat on localhost) and `make test` (every test).
# Everything else is a building block. Targets skip work that is already done: the venv
# is rebuilt only when pyproject.toml changes, node_modules only when package.json does.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
AUTH ?= none
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: dev test lint synth deploy destroy bootstrap bench soak clean layers

$(VENV)/.stamp-install: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.stamp-install: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.stamp-install node_modules/.stamp-install

dev: $(VENV)/.stamp-install
	$(PY) -m local_gateway --port $(PORT) --auth $(AUTH)

# The authorizer's packages (PyJWT, cryptography) built for Lambda's arm64 Python, kept
# in .build/layers/: synth builds them on first use; this does it ahead of time.
layers: $(VENV)/.stamp-install
	$(PY) infra/layers.py

test: $(VENV)/.stamp-install node_modules/.stamp-install
	$(VENV)/bin/ruff check .
	node --test tests/frontend/
	$(VENV)/bin/pytest

lint: $(VENV)/.stamp-install
	$(VENV)/bin/ruff check .

synth: $(VENV)/.stamp-install node_modules/.stamp-install
	npx cdk synth --quiet

deploy: $(VENV)/.stamp-install node_modules/.stamp-install
	npx cdk deploy

bootstrap: $(VENV)/.stamp-install node_modules/.stamp-install
	npx cdk bootstrap

destroy: $(VENV)/.stamp-install node_modules/.stamp-install
	npx cdk destroy

# The benches also run the Flask-SocketIO baseline (bench/flask_baseline.py): its
# packages are the `bench` extra, not the chat's.
$(VENV)/.stamp-bench: $(VENV)/.stamp-install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

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
soak: $(VENV)/.stamp-install
	$(PY) bench/e2e.py --json --clients $(SOAK_CLIENTS) --rooms $(SOAK_ROOMS) \
		--rate-per-client $(SOAK_RATE) --seconds $(SOAK_SECONDS) --grace 60

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .ruff_cache .hypothesis .build
