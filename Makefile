# Fragmenty's task index. `make help` lists the targets.
#
# INFRA=local (default): RabbitMQ and FerretDB on this machine, installed and started on demand.
# INFRA=docker: mongo:7 and rabbitmq:3.13-management in containers (needs a Docker engine).
# Either way, FRAGMENTY_RABBITMQ_URL / FRAGMENTY_MONGODB_URL pointing at existing servers win.

SHELL := /bin/bash
INFRA ?= local
PYTEST_ARGS ?=
# Evaluated when used, so a uv installed by `make install` is found in the same run.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: help install infra up demo test test-unit lint format bench docs down status

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install uv and the Python dependencies (uv.lock)
	@scripts/bootstrap.sh

infra: install ## start RabbitMQ and the database (installing them when missing)
ifeq ($(INFRA),docker)
	@$(UV) run python scripts/docker_infra.py up
else
	@scripts/infra.sh up
endif

# A taken port is reported before anything is installed or started; `make down` (any terminal)
# stops exactly what the run started (scripts/services.py records it).
up: install ## run every service (Procfile); logs here, Ctrl-C or `make down` stops them
	@$(UV) run python scripts/services.py check Procfile
	@$(MAKE) --no-print-directory infra
	@$(UV) run python scripts/services.py run Procfile

demo: install ## like `up`, with the crawler reading the local Fragment simulator
	@$(UV) run python scripts/services.py check Procfile.demo
	@$(MAKE) --no-print-directory infra
	@$(UV) run python scripts/services.py run Procfile.demo

test: infra ## the whole suite: unit, integration (real broker + database) and e2e
	@scripts/infra.sh test-tools
	@$(UV) run pytest $(PYTEST_ARGS)

test-unit: install ## only the unit tests (no servers needed)
	@$(UV) run pytest tests/unit $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy

format: install ## apply ruff's fixes and formatting
	@$(UV) run ruff check --fix .
	@$(UV) run ruff format .

docs: install ## write the AsyncAPI document of every message (docs/asyncapi/asyncapi.json)
	@$(UV) run fragmenty-asyncapi --out docs/asyncapi

bench: infra ## run every benchmark in benchmarks/ (one JSON line each)
	@scripts/bench.sh

status: ## what of the local infrastructure and services runs
	@scripts/infra.sh status
	@$(UV) run python scripts/services.py status

down: ## stop what `make up`/`make demo`/`make test` started, and nothing else
	@$(UV) run python scripts/services.py down
ifeq ($(INFRA),docker)
	@$(UV) run python scripts/docker_infra.py down
else
	@scripts/infra.sh down
endif
