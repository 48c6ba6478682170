# copier-api-starter: the template's own commands (`make help`).
# uv comes from PATH, else it is installed once into .tools/ from PyPI.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export PATH := $(abspath $(dir $(UV))):$(PATH)
DEST ?= build/my-api
FRAMEWORK ?= fastapi
PYTEST := $(UV) run pytest -n 2 --dist loadgroup
# The template's own Python: `make lint` checks these directories.
LINT_PATHS := tests bench $(wildcard hooks docs)

.DEFAULT_GOAL := help
.PHONY: help render test test-full lint bench

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

render: $(UV) ## render the FastAPI starter (SQLite, other answers at their defaults) into $(DEST)
	$(UV) run copier copy --defaults --vcs-ref HEAD --data framework=$(FRAMEWORK) "$(CURDIR)" "$(DEST)"

test: $(UV) ## the template's whole test suite (a covering sample of each framework's options)
	$(PYTEST)

test-full: $(UV) ## the same, over every valid option combination of every framework
	$(PYTEST) --full-matrix

lint: $(UV) ## lint the template's own Python (tests, bench, and hooks/docs when they exist)
	$(UV) run ruff check $(LINT_PATHS)
	$(UV) run ruff format --check $(LINT_PATHS)

bench: $(UV) ## benchmarks of the template and the starters (about 15 minutes; needs wrk); BENCH_ARGS=--quick
	$(UV) run --with matplotlib python bench/run.py $(BENCH_ARGS)

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv>=0.9"
