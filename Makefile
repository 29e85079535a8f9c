# The verbs a person types. `make demo` runs Triad on one machine; `make test` runs every test.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each with its stamp keyed on pyproject.toml: the demo's (the runtime and the trainer
# extra) and everything (the demo's plus the dev tools), which `make test`, `lint` and `bench` use.
DEPS := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEMO_STAMP := $(VENV)/.installed-demo-$(DEPS)
STAMP := $(VENV)/.installed-all-$(DEPS)
# torch and DeepSpeed as pyproject's trainer extra writes them, the one place the torch pin lives.
TORCH_REQ := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
DEEPSPEED_REQ := $(shell sed -n 's/^ *"\(deepspeed[<>=!~][^"]*\)".*/\1/p' pyproject.toml)
COMMA := ,
TEST_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad REDIS_URL=redis://127.0.0.1:6379/0 \
            CELERY_BROKER_URL=redis://127.0.0.1:6379/1 TRIAD_DEV=true
# The embedded default that `make demo` runs: SQLite, the filesystem broker, in-memory channels.
EMBEDDED_VAR := $(CURDIR)/var/test-embedded
EMBEDDED_LOG := $(CURDIR)/var/test-embedded.log
EMBEDDED_TEST_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL TRIAD_DEV=true \
                     TRIAD_VAR_DIR=$(EMBEDDED_VAR)

.PHONY: install install-demo demo test test-fast lint services system-packages system-packages-demo bench screenshots clean

# $(call pip_install,EXTRAS): torch first, at the pin: pip takes the CPU build from local disk (any other
# pin pulls several GB of CUDA). Then DeepSpeed without build isolation, because its build imports torch;
# then the project with EXTRAS, which finds both already there.
define pip_install
	@test -n "$(TORCH_REQ)" -a -n "$(DEEPSPEED_REQ)" || { echo "no torch/deepspeed line in pyproject.toml" >&2; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q '$(TORCH_REQ)'
	DS_BUILD_OPS=0 $(BIN)/pip install -q --no-build-isolation '$(DEEPSPEED_REQ)'
	$(BIN)/pip install -q -e '.[$(1)]'
	find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(DEPS)' -delete
endef

$(DEMO_STAMP): pyproject.toml
	$(call pip_install,trainer)
	touch $@

$(STAMP): pyproject.toml
	$(call pip_install,trainer$(COMMA)dev$(COMMA)trl)
	touch $@ $(DEMO_STAMP)

install-demo: $(DEMO_STAMP)

install: $(STAMP)

# bubblewrap for the sandbox; `make test` adds Chromium for the browser tests.
system-packages-demo:
	@bash .ci/system-packages.sh demo

system-packages:
	@bash .ci/system-packages.sh test

services:
	@bash .ci/services.sh

demo: install-demo system-packages-demo
	TRIAD_DEV=true $(BIN)/python manage.py demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	TRIAD_DEV=true $(BIN)/mypy controlplane runs datasets_app workers triad
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

# Where each run writes the ids of the tests it selects (tests/selection_check.py reads them).
SELECTION := $(CURDIR)/var/test-selection

test: install system-packages services lint
	@# Shared memory that runs killed before their launcher could clean up (an hour old at least).
	-find /dev/shm -maxdepth 1 -name 'deepspeed_allreduce_buffer_*' -mmin +60 -delete
	@# A JIT build of DeepSpeed's CPU op killed midway leaves its lock, and every later run waits on it.
	-find $(HOME)/.cache/torch_extensions -name lock -mmin +10 -delete 2>/dev/null
	@# Two runs at once: on PostgreSQL and Redis, and on the embedded default (SQLite, the filesystem
	@# broker) that `make demo` runs. They share nothing (databases, brokers, var dirs are their own), and
	@# the PostgreSQL run spends much of its time waiting on the processes its end-to-end tests start, which
	@# leaves the second core to the other run. Both run the control plane's tests; the PostgreSQL run alone
	@# runs the tests that need the servers (postgres_only) and the e2e tests, whose stack is wired to
	@# PostgreSQL and Redis. The run_once tests (pyproject.toml's paths: the node side's own, plain Python
	@# with the trainer's real deepspeed runs, and the demo's own stack) touch neither run's database nor
	@# broker: the embedded run runs them, e2e ones included, except run_once_on_postgres (the longest
	@# deepspeed runs), which the PostgreSQL run takes to even out the two. Measured (2026-12-04, CI on
	@# this 2-core box): the PostgreSQL run 24.5 min, the embedded one 21; make test about 27 in all.
	@# tests/selection_check.py then checks that the two runs together left no test file or test out.
	rm -rf $(EMBEDDED_VAR) $(EMBEDDED_LOG) $(SELECTION)
	mkdir -p $(dir $(EMBEDDED_LOG)) $(SELECTION)
	@$(EMBEDDED_TEST_ENV) $(BIN)/pytest -q -p no:cacheprovider --durations=20 \
		-m "not run_once_on_postgres and (run_once or not (postgres_only or e2e))" \
		--selection-to=$(SELECTION)/embedded.json \
		> $(EMBEDDED_LOG) 2>&1 & embedded=$$!; \
	echo "embedded-default run started (pid $$embedded, its output: $(EMBEDDED_LOG))"; \
	$(TEST_ENV) $(BIN)/pytest -q --durations=40 -m "not run_once or run_once_on_postgres" \
		--selection-to=$(SELECTION)/postgres.json; \
	postgres=$$?; \
	wait $$embedded; embedded_rc=$$?; \
	echo "--- the run on the embedded default ($(EMBEDDED_LOG)):"; cat $(EMBEDDED_LOG); \
	echo "make test: PostgreSQL run exit $$postgres, embedded-default run exit $$embedded_rc"; \
	$(BIN)/python -m tests.selection_check $(SELECTION)/postgres.json $(SELECTION)/embedded.json; \
	selection=$$?; \
	test $$postgres -eq 0 -a $$embedded_rc -eq 0 -a $$selection -eq 0

test-fast: install
	$(TEST_ENV) $(BIN)/pytest -q -m "not e2e"

bench: install services
	$(TEST_ENV) $(BIN)/python bench/sandbox.py

# The pictures in docs/screenshots/ (docs/ui.md), from demo data on a database of their own.
screenshots: install services
	$(TEST_ENV) $(BIN)/python bench/screenshots.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
