# enerbox: `make run` (the stack with simulated devices), `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: run test lint bench faults ha-check ha-run venv run-venv run-deps system-deps install clean

# Two stamps in one venv: `make run` needs the runtime dependencies only (RUN_STAMP);
# `make test` adds the test tools (STAMP), which also satisfies `make run` (no reinstall).
define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "enerbox needs Python 3.11 or newer (set PYTHON=python3.11)"; exit 1; }
	[ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
endef

$(RUN_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/pip install -q -e .
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP) $(RUN_STAMP)

venv: $(STAMP)
run-venv: $(RUN_STAMP)

# `make run` needs the broker (and its clients, for the mosquitto_sub lines it prints).
run-deps:
	@missing=""; \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="mosquitto"; \
	command -v mosquitto_sub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	if [ -n "$$missing" ]; then \
		echo "installing with apt-get:$$missing"; \
		$(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	fi

# The tests also use a real time-series database, a browser, openssl and docker-compose's
# config check; install what is missing.
system-deps:
	@missing=""; \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="mosquitto"; \
	command -v mosquitto_sub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v victoria-metrics >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing with apt-get:$$missing"; \
		$(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	fi

lint: venv
	$(BIN)/ruff check services tests bench faults
	$(BIN)/mypy

test: venv system-deps lint
	$(BIN)/pytest

bench: venv
	$(BIN)/python -m bench

# Kill real processes on loopback (and the database, the broker, the power): print, per fault,
# the readings lost and doubled in every sink, the time to recover and the loads left on
# (docs/FAULTS.md, about 40 min); exits 1 on any loss, double or load left on. The table also
# goes to run/faults.json. `make test` runs the data path's 3-minute version.
faults: venv system-deps
	$(BIN)/python -m faults

# Every HA discovery component the services publish, validated by Home Assistant's own MQTT
# schemas (HA 2024.3.3, the newest on Python 3.11, in its own venv; not part of make test).
HA_VENV ?= /tmp/havenv
# Python 3.13 (pyenv) runs HA 2025.4.4, the newest on 3.13.0, with device-based discovery;
# without it, HA 2024.3.3 on Python 3.11 checks each component alone.
PY313 ?= $(wildcard /root/.pyenv/versions/3.13.*/bin/python)
HA13_VENV ?= /tmp/ha13
ha-check: venv
	[ -x $(HA_VENV)/bin/python ] || { $(PYTHON) -m venv $(HA_VENV) && \
	  $(HA_VENV)/bin/pip install -q homeassistant==2024.3.3; }
	$(BIN)/python -m services.app.ha_catalog > $(HA_VENV)/enerbox-catalog.json
	$(HA_VENV)/bin/python tools/ha_check.py $(HA_VENV)/enerbox-catalog.json
	if [ -n "$(PY313)" ]; then \
	  [ -x $(HA13_VENV)/bin/python ] || { $(firstword $(PY313)) -m venv $(HA13_VENV) && \
	    $(HA13_VENV)/bin/pip install -q homeassistant==2025.4.4 paho-mqtt==2.1.0; } && \
	  $(HA13_VENV)/bin/python tools/ha_check.py $(HA_VENV)/enerbox-catalog.json; fi

# A real HA (the Python 3.13 venv of ha-check) against `enerbox sim stack`: devices, entities,
# discovery errors in its log, a few states (about 3 minutes).
ha-run: ha-check
	@[ -x $(HA13_VENV)/bin/hass ] || { echo "make ha-run needs Python 3.13 (pyenv) for HA 2025.4.4"; exit 1; }
	$(BIN)/python tools/ha_run.py --ha-venv $(HA13_VENV)

run: run-venv run-deps
	$(BIN)/enerbox sim stack

# Without Docker, as root on the Pi: the package in /opt/enerbox, config in /etc/enerbox,
# data in /var/lib/enerbox, and a systemd unit running `enerbox run all`.
PREFIX ?= /opt/enerbox
install:
	@[ "$$(id -u)" = 0 ] || { echo "make install: run it as root (sudo make install)"; exit 1; }
	id enerbox >/dev/null 2>&1 || useradd --system --home-dir /var/lib/enerbox --shell /usr/sbin/nologin enerbox
	for g in dialout gpio i2c; do getent group $$g >/dev/null && usermod -aG $$g enerbox || true; done
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/pip install -q --upgrade pip
	# The `pi` extra (lgpio, gpiod: Pi 5 GPIO) only on a Raspberry Pi.
	if grep -qs 'Raspberry Pi' /proc/device-tree/model; then \
		$(PREFIX)/bin/pip install -q '.[pi]'; else $(PREFIX)/bin/pip install -q .; fi
	install -m 644 README.md $(PREFIX)/README.md
	install -d -o enerbox -g enerbox -m 750 /var/lib/enerbox
	install -d -m 755 /etc/enerbox
	[ -f /etc/enerbox/enerbox.yaml ] || install -m 640 -g enerbox config/enerbox.yaml /etc/enerbox/enerbox.yaml
	install -m 644 config/enerbox.service /etc/systemd/system/enerbox.service
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload && systemctl enable --now enerbox; \
	else echo "no systemd here: start it with $(PREFIX)/bin/enerbox run all"; fi
	@echo "enerbox installed: edit /etc/enerbox/enerbox.yaml, then: systemctl restart enerbox"

clean:
	rm -rf $(VENV) run data .pytest_cache .mypy_cache .ruff_cache .hypothesis
