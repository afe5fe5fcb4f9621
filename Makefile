# enerbox: `make run` (the stack with simulated devices), `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: run test lint bench venv system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "enerbox needs Python 3.11 or newer (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The broker, the time-series database and the browser are always real (tests and
# `make run`); install what is missing.
system-deps:
	@missing=""; \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="mosquitto mosquitto-clients"; \
	command -v victoria-metrics >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing with apt-get:$$missing"; \
		$(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	fi

lint: venv
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy

test: venv system-deps lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python -m bench

run: venv system-deps
	$(BIN)/enerbox sim stack

clean:
	rm -rf $(VENV) run data .pytest_cache .mypy_cache .ruff_cache .hypothesis
