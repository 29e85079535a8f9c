# The verbs a person types. `make demo` runs Triad on one machine; `make test` runs every test.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
TEST_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad REDIS_URL=redis://127.0.0.1:6379/0 \
            CELERY_BROKER_URL=redis://127.0.0.1:6379/1 TRIAD_DEV=true
# The embedded default that `make demo` runs: SQLite, the filesystem broker, in-memory channels.
EMBEDDED_VAR := $(CURDIR)/var/test-embedded
EMBEDDED_TEST_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL TRIAD_DEV=true \
                     TRIAD_VAR_DIR=$(EMBEDDED_VAR)

.PHONY: install demo test test-fast lint services system-packages bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# torch first, pinned: pip takes the CPU build from local disk. DeepSpeed's build imports torch.
	$(BIN)/pip install -q torch==2.13.0 numpy
	DS_BUILD_OPS=0 $(BIN)/pip install -q --no-build-isolation 'deepspeed>=0.16'
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

system-packages:
	@bash .ci/system-packages.sh

services:
	@bash .ci/services.sh

demo: install system-packages
	TRIAD_DEV=true $(BIN)/python manage.py demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	TRIAD_DEV=true $(BIN)/mypy controlplane runs datasets_app workers
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

test: install system-packages services lint
	@# Shared memory that runs killed before their launcher could clean up (an hour old at least).
	-find /dev/shm -maxdepth 1 -name 'deepspeed_allreduce_buffer_*' -mmin +60 -delete
	@# A JIT build of DeepSpeed's CPU op killed midway leaves its lock, and every later run waits on it.
	-find $(HOME)/.cache/torch_extensions -name lock -mmin +10 -delete 2>/dev/null
	$(TEST_ENV) $(BIN)/pytest -q
	@# Again on the embedded default: every test but those that need the servers. The e2e tests too are
	@# left out here: their stack fixture is wired to PostgreSQL and Redis.
	rm -rf $(EMBEDDED_VAR)
	$(EMBEDDED_TEST_ENV) $(BIN)/pytest -q -m "not postgres_only and not e2e"

test-fast: install
	$(TEST_ENV) $(BIN)/pytest -q -m "not e2e"

bench: install services
	$(TEST_ENV) $(BIN)/python bench/sandbox.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
