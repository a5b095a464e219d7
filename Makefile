# Warden — the two commands of the README:
#   make run    install everything into .venv and start the embedded service with demo traffic
#   make test   install what the tests need (PostgreSQL server, Chromium, Apache Kafka jars), lint and type-check
#               (ruff, mypy) and run the whole suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test unit lint install test-deps postgres-server chromium kafka-jars bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/warden up --demo

# PostgreSQL server binaries from Debian's packages (the suite starts its own throwaway cluster).
postgres-server:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (Debian package postgresql)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# Chromium from Debian's packages: the console's browser tests drive it with Playwright (no browser download).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Chromium (Debian package chromium)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# Apache Kafka's jars, resolved through Maven into ~/.cache/warden (outside the repository).
kafka-jars: install
	$(PY) -c "from tests.support.kafka import kafka_libs; print('kafka jars:', kafka_libs())"

test-deps: install postgres-server chromium kafka-jars

# lint first: a type or lint error fails the run before the ten-minute suite starts
test: test-deps lint
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# the pure tests: no Kafka, no PostgreSQL, no browser
unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.throughput

clean:
	rm -rf $(VENV) .warden .pytest_cache
