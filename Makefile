# livepeer-client workspace. `make demo` and `make test` both work as the first command on a fresh clone:
# they depend on `setup`, which installs uv (from PyPI) if needed and syncs the locked environment.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast test-latest check lint typecheck imports namespace workflows freshness \
        generate schemas bench build clean mutate

# The lowest supported Python is the development default, so the whole suite runs on it in CI.
PYTHON_VERSION ?= 3.10
LATEST_PYTHON_VERSION ?= 3.13
# Interpreters come from the machine: uv may not download them here (only package registries are reachable).
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY := .venv/bin/python
PYTEST_ARGS ?=
TYPED := runtime/livepeer-trickle/src runtime/livepeer-client/src runtime/livepeer-runner/src \
         runtime/livepeer-devnet/src runtime/livepeer-gateway/src generated/src codegen/src
# Paths whose content `make generate` owns; `make check` fails if regenerating changes them.
GENERATED := generated runtime/livepeer-client/src/livepeer/client/_proto

help:
	@echo "make setup     install uv if missing, then sync the locked workspace into .venv"
	@echo "make demo      start the local devnet and run the README quickstart against it"
	@echo "make test      run the whole test suite (slow and interop suites included)"
	@echo "make check     ruff, format, mypy --strict, import circles and module sizes, PEP 420 check, workflow schemas, generated-code freshness"
	@echo "make generate  regenerate generated/ and the protobuf modules from what is committed"
	@echo "make schemas   re-import capability schemas from the sources in schemas/SOURCES.md"
	@echo "make mutate    mutation-test the protocol modules (MODULES=\"sse signer ...\" or all; see docs/testing.md)"
	@echo "make bench     run the benchmarks in bench/ one after another (~10 min); renders bench/RESULTS.md"
	@echo "make build     build wheel and sdist of every distribution into dist/"

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	@$(UV) sync --all-packages --locked --quiet --python "$$(scripts/find-python $(PYTHON_VERSION))"

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The unit suites once more on the newest supported Python, in a separate environment.
test-latest: setup
	UV_PROJECT_ENVIRONMENT=.venv-latest $(UV) sync --all-packages --locked --quiet \
		--python "$$(scripts/find-python $(LATEST_PYTHON_VERSION))"
	.venv-latest/bin/python -m pytest -q -m "not slow" tests/unit $(PYTEST_ARGS)

check: setup lint typecheck imports namespace workflows freshness

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck:
	$(PY) -m mypy $(TYPED)

# No import circles in any runtime package, lazy (function-level) imports included (docs/architecture.md).
# The product runtime also keeps every module under 700 lines (docs/decisions.md D-arch-size).
imports:
	$(PY) scripts/check_imports.py livepeer.client livepeer.trickle livepeer.devnet livepeer.runner \
		livepeer.capabilities livepeer.codegen
	$(PY) scripts/check_imports.py --max-lines 700 livepeer.client livepeer.trickle

namespace: build
	$(PY) scripts/check_namespace.py --wheels dist

workflows:
	$(PY) scripts/check_workflows.py

freshness: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated code is stale: 'make generate' changed these files (commit them):"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi

generate: setup
	$(PY) scripts/gen_proto.py
	$(PY) -m livepeer.codegen render

schemas: setup
	$(PY) -m livepeer.codegen import --sources schemas/SOURCES.md

# Mutation testing (scripts/mutate.py, docs/testing.md): each mutant runs only the tests that execute its
# line. MODULES defaults to the priority set; MUTATE_ARGS e.g. "-j 1" or "--min-rate 0.85".
MODULES ?= subscriber publisher sse selection signer
MUTATE_ARGS ?=
mutate: setup
	$(PY) scripts/mutate.py $(MUTATE_ARGS) $(MODULES)

# One after another (never concurrently): each writes bench/results/<name>.json; render.py writes RESULTS.md.
bench: setup
	@for f in run stream trickle live; do echo "== bench/$$f.py"; $(PY) bench/$$f.py || exit 1; done
	@$(PY) bench/render.py

build: setup
	@rm -rf dist
	@$(UV) build --all-packages --quiet --out-dir dist
	@ls dist

clean:
	rm -rf dist .venv .venv-latest .mypy_cache .ruff_cache .pytest_cache
