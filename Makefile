# `make demo` and `make test` work on a fresh machine: they create the virtualenv,
# install what they need (Python packages, and for tests Debian's chromium), then run.
VENV ?= .venv
PY := $(VENV)/bin/python
NEWSLETTER := $(VENV)/bin/newsletter
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: install system-deps demo test lint format regen bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The distribution was named `composer` before (PyPI's unrelated deep-learning library):
	# drop that old install of this checkout so one distribution provides `newsletter`.
	$(PY) -m pip uninstall -q -y composer 2>/dev/null || true
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# What the tests need from outside PyPI (chromium for what a reader sees).
system-deps:
	./.ci/system-deps

demo: install
	@./.ci/demo $(NEWSLETTER) $(DEMO)

test: install system-deps
	$(VENV)/bin/ruff check composer tests bench
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check composer tests bench
	$(VENV)/bin/ruff format --check composer tests bench

format: install
	$(VENV)/bin/ruff format composer tests bench
	$(VENV)/bin/ruff check --fix composer tests bench

# Regenerate every expected-output file (HTML, text, archive) after an intended change.
regen: install
	$(PY) -m tests.regen

# Speed and memory figures (recorded in BENCHMARKS.md). Some take minutes.
bench: install system-deps
	for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build site outbox $(DEMO)
