# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export GATEWAY_ADMIN_TOKEN ?= dev-admin-token

.PHONY: run paper-broker test fuzz lint format bench clean

$(BIN)/order-gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

run: $(BIN)/order-gateway  ## the gateway on 127.0.0.1:8080 with the embedded paper broker
	$(BIN)/order-gateway --config deploy/gateway.dev.toml serve

paper-broker: $(BIN)/order-gateway
	$(BIN)/order-gateway paper-broker --port 9000

test: $(BIN)/order-gateway  ## the whole suite; needs Redis on 127.0.0.1:6379
	$(BIN)/python -m pytest --cov=rules --cov-branch --cov-fail-under=100 --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

# Rounds of tests/fuzz with random seeds and FUZZ_EXAMPLES examples per test, until
# FUZZ_MINUTES have passed (the round running then finishes); the first failure stops it and
# is kept in .hypothesis/ so that the next run replays it first.
FUZZ_MINUTES ?= 30
FUZZ_EXAMPLES ?= 500
fuzz: $(BIN)/order-gateway  ## the long fuzz run (README: Fuzzing); needs Redis like make test
	@end=$$(( $$(date +%s) + $(FUZZ_MINUTES) * 60 )); round=0; \
	while [ $$(date +%s) -lt $$end ]; do \
		round=$$((round + 1)); echo "== fuzz round $$round ($$(date -u +%H:%M:%S) UTC)"; \
		HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz \
			-q -p no:cacheprovider --hypothesis-show-statistics $(PYTEST_ARGS) || exit 1; \
	done; echo "== fuzz: $$round rounds, no failure"

lint: $(BIN)/order-gateway
	$(BIN)/ruff format --check gateway rules tests benchmarks
	$(BIN)/ruff check gateway rules tests benchmarks
	$(BIN)/mypy

format: $(BIN)/order-gateway
	$(BIN)/ruff format gateway rules tests benchmarks
	$(BIN)/ruff check --fix gateway rules tests benchmarks

bench: $(BIN)/order-gateway  ## loopback benchmark: gateway vs naive proxy vs upstream
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
