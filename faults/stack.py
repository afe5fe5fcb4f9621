"""One enerbox on loopback: broker, simulated Linky on a pty, services, fake I2C boards.

Wired as `make run` wires it (services/sim/stack.py), with every device on a fake board file
so the hardware truth can be read from outside: the water heater on a PCF8574 (active-low
relay), the two radiator zones on an MCP23017 (fil pilote, Remora style).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faults.procs import Proc, free_port, start_broker
from faults.truth import BoardLoad, BoardWatcher, Recorder, Seen

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "faults"
TOKEN = "faults-token"  # noqa: S105  (a throwaway token for a loopback API)
SAFE = {"water-heater": "off", "living": "arret", "bedroom": "arret"}
# "Loads on": the water heater forced on for an hour, both radiators on Confort.
ON_COMMANDS = {"water-heater": '{"mode":"on","for_s":3600}', "living": '{"order":"confort"}',
               "bedroom": '{"order":"confort"}'}
ON = {"water-heater": "on", "living": "confort", "bedroom": "confort"}
# Freshness and grace written into the config (the limits are these + 1 s).
STALE_AFTER_S = 5.0
GRACE_DEFAULT_S = 5.0
RESTORE_DELAY_S = 2.0


def export_tree(rev: str, dest: Path) -> Path:
    """A clean copy of a commit's tree (git archive): what main holds at ``rev``, without
    anybody's uncommitted edits."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest.resolve()


class Source:
    """Which enerbox the services run from: the checkout (default) or an export of HEAD."""

    root: Path = ROOT

    @classmethod
    def use(cls, root: Path) -> None:
        """Run the services (and read their config models) from ``root``."""
        cls.root = root


def _defaults(module: str, cls: str) -> dict[str, Any]:
    """Fields of a config model in the source, with their numeric defaults ({} on failure)."""
    code = ("import json, sys; m = __import__(sys.argv[1], fromlist=[sys.argv[2]]); "
            "f = getattr(m, sys.argv[2]).model_fields; "
            "print(json.dumps({k: v.default if isinstance(v.default, (int, float)) else None "
            "for k, v in f.items()}))")
    # In a child process: the source may be another tree than the one running this script.
    done = subprocess.run([sys.executable, "-c", code, module, cls], cwd=Source.root,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(Source.root)})
    if done.returncode != 0:
        return {}
    fields: dict[str, Any] = json.loads(done.stdout)
    return fields


def grace_s() -> tuple[float, bool]:
    """relays.shedding_grace_s (configured by us when main has it), and whether it does."""
    return GRACE_DEFAULT_S, "shedding_grace_s" in _defaults("services.relays.config",
                                                            "RelaysConfig")


def relays_state_expiry_s() -> tuple[float | None, str]:
    """How long relays' retained state outlives a dead relays service, and the key saying so."""
    for name, default in _defaults("services.relays.config", "RelaysConfig").items():
        if "expiry" in name and default is not None:
            return float(default), f"relays.{name}"
    default = _defaults("services.core.config", "MqttConfig").get("state_expiry_s")
    if default is not None:
        return float(default), "mqtt.state_expiry_s"
    return None, "none"


class Stack:
    """Processes of one scenario; ``close`` leaves nothing running."""

    def __init__(self, work: Path, *, peak_at_s: float | None = None,
                 services: tuple[str, ...] = ("relays", "shedding", "teleinfo"),
                 config: dict[str, Any] | None = None, durable_broker: bool = False) -> None:
        """``config``: sections merged over the defaults below; ``durable_broker``: the
        broker persists as mosquitto/mosquitto.conf says (a restart keeps sessions)."""
        self.extra = config or {}
        self.durable_broker = durable_broker
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self.work = work.resolve()
        self.procs: dict[str, Proc] = {}
        self.recorder: Recorder | None = None
        self.watcher: BoardWatcher | None = None
        self.api_port = 0
        # No ENERBOX_* from the caller's shell: the run is the config we write.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENERBOX_")}
        self.env["PYTHONPATH"] = str(Source.root)
        self.link = self.work / "tic0"
        self.sim_started = 0.0
        try:
            self._up(peak_at_s, services)
        except BaseException:
            self.close()  # a half-started stack leaves nothing running either
            raise

    def _up(self, peak_at_s: float | None, services: tuple[str, ...]) -> None:
        broker, self.port = start_broker(self.work, self.env, durable=self.durable_broker)
        self.procs["mosquitto"] = broker
        self.env["ENERBOX_CONFIG"] = str(self._write_config())
        self.recorder = Recorder(self.port, PREFIX)
        self.watcher = BoardWatcher(self.board_loads())
        self.watcher.start()
        if "teleinfo" in services:
            self._start_sim(peak_at_s)
        for name in services:
            self.start(name)

    @property
    def rec(self) -> Recorder:
        """The ground-truth MQTT recorder."""
        assert self.recorder is not None
        return self.recorder

    @property
    def board(self) -> BoardWatcher:
        """The ground-truth board watcher."""
        assert self.watcher is not None
        return self.watcher

    def board_loads(self) -> list[BoardLoad]:
        """Where each load sits on the fake boards."""
        return [
            BoardLoad("water-heater", self.work / "relay-board.json", 0x21, "pcf8574", (0,),
                      active_low=True),
            BoardLoad("living", self.work / "remora.json", 0x20, "mcp23017", (0, 1)),
            BoardLoad("bedroom", self.work / "remora.json", 0x20, "mcp23017", (2, 3)),
        ]

    def _write_config(self) -> Path:
        self.api_port = free_port()
        relays: dict[str, Any] = {
            "boards": [
                {"id": "relay-board", "driver": "pcf8574", "address": 0x21,
                 "bus": f"fake:{self.work / 'relay-board.json'}"},
                {"id": "remora", "driver": "mcp23017", "address": 0x20,
                 "bus": f"fake:{self.work / 'remora.json'}"},
            ],
            "relays": [
                {"id": "water-heater", "board": "relay-board", "channel": 0, "active_low": True},
                {"id": "living", "kind": "fil_pilote", "board": "remora", "channels": [0, 1]},
                {"id": "bedroom", "kind": "fil_pilote", "board": "remora", "channels": [2, 3],
                 "default": "eco"},
            ],
        }
        grace, configurable = grace_s()
        if configurable:
            relays["shedding_grace_s"] = grace
        config: dict[str, dict[str, Any]] = {
            "general": {"data_dir": str(self.work / "data"), "log_level": "INFO"},
            "mqtt": {"host": "127.0.0.1", "port": self.port, "prefix": PREFIX},
            "homeassistant": {"discovery": False},
            "teleinfo": {"meters": [{"id": "linky", "port": str(self.link), "mode": "standard"}],
                         "offline_after_s": STALE_AFTER_S, "publish_raw": False},
            "relays": relays,
            "shedding": {"meter": "linky", "stale_after_s": STALE_AFTER_S,
                         "restore_delay_s": RESTORE_DELAY_S, "loads": [
                             {"relay": "water-heater", "priority": 1, "power_w": 3000},
                             {"relay": "bedroom", "priority": 2, "power_w": 1000},
                             {"relay": "living", "priority": 3, "power_w": 1500}]},
            "api": {"host": "127.0.0.1", "port": self.api_port, "token": TOKEN},
        }
        for section, values in self.extra.items():
            config[section] = {**config.get(section, {}), **values}
        path = self.work / "enerbox.yaml"
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is YAML
        return path

    def _start_sim(self, peak_at_s: float | None) -> None:
        # A long simulated day keeps the house at its night load: only the peak we ask for.
        argv = [sys.executable, "-m", "services.sim", "tic", "--mode", "standard",
                "--phases", "1", "--link", str(self.link), "--day-length-s", "100000"]
        if peak_at_s is None:
            argv += ["--peak-duration-s", "0"]
        else:
            argv += ["--peak-at-s", str(peak_at_s), "--peak-duration-s", "120",
                     "--peak-level", "1.2"]
        sim = Proc("sim-tic", argv, self.env, self.work, cwd=Source.root)
        self.procs["sim-tic"] = sim
        self.sim_started = time.monotonic()
        sim.start()
        deadline = time.monotonic() + 15
        while not self.link.exists():
            if time.monotonic() > deadline or not sim.alive():
                raise RuntimeError(f"TIC simulator did not start; see {sim.log_path}")
            time.sleep(0.05)

    def start(self, name: str) -> Proc:
        """Start (or restart) ``python -m services.<name>``."""
        proc = self.procs.get(name)
        if proc is None:
            proc = Proc(name, [sys.executable, "-m", f"services.{name}"], self.env, self.work,
                        cwd=Source.root)
            self.procs[name] = proc
        proc.start()
        return proc

    def kill9(self, name: str) -> float:
        """kill -9 a service; returns the moment it struck."""
        at = time.monotonic()
        self.procs[name].kill9()
        return at

    def wait_ready(self, timeout: float = 45.0) -> None:
        """Meter data flowing, relays publishing, shedding online: RuntimeError otherwise."""
        wants = {
            "teleinfo state": f"{PREFIX}/teleinfo/linky/state",
            "shedding online": f"{PREFIX}/shedding/status",
            "relays state": f"{PREFIX}/relays/bedroom/state",
        }
        deadline = time.monotonic() + timeout
        for what, topic in wants.items():
            while self.rec.wait_for(on_topic(topic), 0.2) is None:
                dead = [n for n, pr in self.procs.items() if not pr.alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"stack not ready: no {what} in {timeout:.0f} s "
                                       f"(exited: {dead or 'none'}; logs in {self.work})")

    def loads_on(self, commands: dict[str, str] | None = None,
                 expect: dict[str, str] | None = None, timeout: float = 20.0) -> None:
        """Send the commands and wait until the board holds them; RuntimeError otherwise."""
        commands = commands or ON_COMMANDS
        expect = expect or ON
        start = time.monotonic()
        for relay, payload in commands.items():
            self.rec.publish(f"relays/{relay}/set", payload)
        for relay, value in expect.items():
            if self.board.first(relay, value, start, timeout) is None:
                raise RuntimeError(f"setup: {relay} never reached {value} on the board "
                                   f"(board: {self.board.current()}; logs in {self.work})")
        # The board holds the orders; wait until the relays service has said so too.
        for relay, value in expect.items():
            self.rec.wait_for(relay_is(relay, value), 5, start)

    def close(self) -> None:
        """Stop every process (services first, broker last) and the recorders."""
        for name, proc in reversed(list(self.procs.items())):
            if name != "mosquitto":
                proc.stop()
        if self.recorder is not None:
            self.recorder.close()
        if self.watcher is not None:
            self.watcher.stop()
        if "mosquitto" in self.procs:
            self.procs["mosquitto"].stop()


def on_topic(topic: str) -> Callable[[Seen], bool]:
    """Predicate: a message on exactly ``topic``."""
    return lambda m: m.topic == topic


def relay_is(relay: str, value: str) -> Callable[[Seen], bool]:
    """Predicate: a relay state message claiming ``value`` (on/off or an order)."""
    topic = f"{PREFIX}/relays/{relay}/state"
    return lambda m: m.topic == topic and relay_value(m.json()) == value


def relay_value(state: dict[str, Any] | None) -> str | None:
    """The output a relay state message claims: 'state' of a switch, 'order' of a zone."""
    if state is None:
        return None
    value = state.get("state", state.get("order"))
    return value if isinstance(value, str) else None

