# modrun: `make run` serves the example plugins; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-fast install system-deps examples console test-oidc test-plugins lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## Serve the bundled example plugins on http://127.0.0.1:8686 (SQLite, local dir, no keys).
run: install
	$(BIN)/modrun serve --plugins examples

system-deps:
	scripts/install-system-deps.sh

## Rebuild every example plugin from its source.
examples: system-deps
	cd examples/hello-as && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	cd examples/connect-as && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	cd examples/chat-as && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	examples/textkit-c/build.sh

## Rebuild the web console (console/ -> src/modrun/console/static); under CI=true fail
## when the committed build is not what the sources make.
console: system-deps
	cd console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	@if [ "$$CI" = "true" ]; then git diff --exit-code --stat -- src/modrun/console/static \
		|| { echo "the committed console build is stale: run make console and commit it" >&2; exit 1; }; fi

## The OpenID provider the identity tests run against (oidc-provider, from npm).
test-oidc: system-deps
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error

## The test plugins built from source with npm (the Modus-ABI plugin: AssemblyScript and
## our own compiler transform for its metadata section).
test-plugins: system-deps
	cd tests/modus/plugin && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

## ruff, mypy, the layer contract (import-linter, pyproject.toml) and no import circles (src/, console/src/).
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_import_circles.py

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## Install what the tests need, rebuild the examples from source, lint, run the suite.
test: install system-deps examples console test-oidc test-plugins lint
	$(BIN)/pytest

## The suite without the slow fleet tests (CI runs them all).
test-fast: install system-deps console test-oidc test-plugins lint
	$(BIN)/pytest -m "not slow"

bench: install
	$(BIN)/python bench/bench_calls.py
	$(BIN)/python bench/bench_http.py
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_history.py
	$(BIN)/python bench/bench_executors.py
	$(BIN)/python bench/bench_fleet.py
	$(BIN)/python bench/bench_control.py
	$(BIN)/python bench/bench_console.py
	$(BIN)/python bench/bench_overload.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache examples/hello-as/node_modules console/node_modules tests/oidc/node_modules tests/modus/plugin/node_modules
