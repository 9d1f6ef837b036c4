# growalert: `make run` for a working local stack with demo data, `make test` for the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE := growalert.settings
# Local development defaults; production sets these in the environment instead.
export DJANGO_DEBUG ?= true
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bootstrap bootstrap-browser bootstrap-bench services-up services-down services-status migrate demo serve \
        lint typecheck migrations-check pytest bench clean

run: bootstrap services-up migrate demo serve

# The test target also installs Debian's chromium for the browser tests (tests/pages) and
# prometheus for promtool (tests/growalert/test_self_monitoring.py checks deploy/prometheus/).
test: bootstrap-browser services-up lint typecheck migrations-check pytest

bootstrap:
	@scripts/bootstrap.sh

bootstrap-browser:
	@scripts/bootstrap.sh --browser

# The benchmarks also need Debian's wrk.
bootstrap-bench:
	@scripts/bootstrap.sh --bench

services-up:
	@scripts/services.sh up

services-down:
	@scripts/services.sh down

services-status:
	@scripts/services.sh status

migrate:
	@$(PY) manage.py migrate --no-input -v0

demo:
	@$(PY) manage.py load_demo

serve:
	@GROWALERT_DEMO=true HOST=$(HOST) PORT=$(PORT) scripts/run_all.sh

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(VENV)/bin/mypy .

# Fails when a model changed without its migration.
migrations-check:
	$(PY) manage.py makemigrations --check --dry-run

# With a line-coverage summary (configured in pyproject.toml's [tool.coverage.*]).
pytest:
	@mkdir -p .local/coverage
	$(VENV)/bin/pytest --cov --cov-report=term

bench: bootstrap-bench services-up migrate
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: services-down
	rm -rf .local
