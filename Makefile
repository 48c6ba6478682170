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
.PHONY: help render test test-full lint bench release

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

bench: $(UV) ## benchmarks of the template and the starters (about 45 minutes; needs wrk and PostgreSQL); BENCH_ARGS=--quick
	$(UV) run --with matplotlib --with py-spy python bench/run.py $(BENCH_ARGS)

# The tag `copier copy --vcs-ref vX.Y.Z` and `copier update` read: annotated,
# on a clean, committed tree, and only once CHANGELOG.md says what it brings.
release: ## tag this commit as a release: make release VERSION=x.y.z (needs its CHANGELOG.md entry)
	@echo "$(VERSION)" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+' \
		|| { echo "make release: give the version as VERSION=x.y.z, e.g. make release VERSION=0.3.0" >&2; exit 1; }
	@grep -qxF '## $(VERSION) (tag `v$(VERSION)`)' CHANGELOG.md \
		|| { echo "make release: CHANGELOG.md has no entry for $(VERSION); add a section headed: ## $(VERSION) (tag \`v$(VERSION)\`)" >&2; exit 1; }
	@test -z "$$(git status --porcelain)" \
		|| { echo "make release: commit or stash your changes first (the tag names a commit)" >&2; exit 1; }
	@! git rev-parse -q --verify "refs/tags/v$(VERSION)" >/dev/null \
		|| { echo "make release: tag v$(VERSION) exists already" >&2; exit 1; }
	git tag -a "v$(VERSION)" -m "copier-api-starter v$(VERSION)"
	@echo "Tagged v$(VERSION). Publish it with: git push origin v$(VERSION)"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv>=0.9"
