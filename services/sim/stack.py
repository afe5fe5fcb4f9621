"""`enerbox sim stack` (what `make run` runs): broker, simulators and services, together.

Every process is started in its own process group and stopped on Ctrl-C or SIGTERM, so
nothing is left running. The services get the example configuration
(config/enerbox.yaml) with only their device paths and broker port pointed at the
simulators through ENERBOX_* variables, the same mechanism docker-compose uses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from services.app.registry import SERVICES
from services.core.contract import TopicKind, Topics
from services.sim.onewire import TANK_TOP

RUN_DIR = Path("run")
STACK_SERVICES = ("historian", "relays", "shedding", "teleinfo", "vedirect", "inverter", "pulses",
                  "temperature", "automation", "display", "api")


@dataclass
class Stack:
    """The processes of one `make run`."""

    run_dir: Path
    port: int
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start a child in its own session; its output goes to run/<name>.log."""
        log = (self.run_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append((name, proc))

    def stop(self) -> None:
        """SIGTERM everything, newest first; SIGKILL what does not stop within 5 s."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def dead(self) -> list[str]:
        """Names of children that exited."""
        return [name for name, proc in self.procs if proc.poll() is not None]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None
    )


def _start_broker(stack: Stack) -> bool:
    """Our own mosquitto on 127.0.0.1, unless one already answers on the port."""
    if _listening(stack.port):
        print(f"  using the MQTT broker already listening on 127.0.0.1:{stack.port}")
        return True
    binary = _mosquitto()
    if binary is None:
        print("mosquitto is not installed: `make run` installs it with apt-get", file=sys.stderr)
        return False
    conf = stack.run_dir / "mosquitto.conf"
    conf.write_text(
        # set_tcp_nodelay: no Nagle delay on what the broker forwards (shed commands).
        f"listener {stack.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "set_tcp_nodelay true\n",
        encoding="utf-8",
    )
    stack.spawn("mosquitto", [binary, "-c", str(conf)])
    deadline = time.monotonic() + 10
    while not _listening(stack.port):
        if time.monotonic() > deadline or stack.dead():
            print(f"mosquitto did not start; see {stack.run_dir}/mosquitto.log", file=sys.stderr)
            return False
        time.sleep(0.1)
    return True


INVERTER_PORT = 1502  # the simulated inverter's Modbus TCP port (config/enerbox.yaml)
PEAK_AT_S = 180  # the simulated Linky's daily spike, seconds after start


def _inverter_port() -> int:
    """1502, as the example config says, unless taken (another stack, a test): then any."""
    if not _listening(INVERTER_PORT):
        return INVERTER_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def counters(sim_dir: Path, name: str) -> Path:
    """A simulator's energy counters, kept from one `make run` to the next (indexes never go
    back: Home Assistant would record negative consumption)."""
    return sim_dir.parent / "counters" / f"{name}.json"  # run/counters: run/sim is emptied


def _start_simulators(stack: Stack, enerbox: list[str], sim_dir: Path, config: str,
                      inverter_port: int) -> None:
    """The home of services.sim.home: a Linky in standard mode (a producer that follows the
    relays), a SmartShunt and a SmartSolar charger under the same sun, each on a pty, and a
    SunSpec inverter with a grid meter on Modbus TCP; their counters go on from the last run."""
    # The daily spike 3 min after start, for 20 s: the water heater the surplus switched on
    # is shed, and restored 30 s after the spike.
    stack.spawn("sim-tic", [*enerbox, "sim", "tic", "--home", "--mode", "standard",
                            "--phases", "1", "--tariff", "tempo", "--link", str(sim_dir / "tic0"),
                            "--peak-at-s", str(PEAK_AT_S), "--peak-duration-s", "20",
                            "--follow", f"127.0.0.1:{stack.port}", "--config", config,
                            "--state", str(counters(sim_dir, "sim-tic"))])
    stack.spawn("sim-vedirect0", [*enerbox, "sim", "vedirect", "--home", "--device", "bmv",
                                  "--link", str(sim_dir / "vedirect0"),
                                  "--state", str(counters(sim_dir, "sim-vedirect0"))])
    stack.spawn("sim-vedirect1", [*enerbox, "sim", "vedirect", "--home", "--device", "mppt",
                                  "--link", str(sim_dir / "vedirect1"),
                                  "--state", str(counters(sim_dir, "sim-vedirect1"))])
    # A SunSpec inverter (unit 1) and grid meter (unit 2) on Modbus TCP, as the example
    # config's inverter bus expects them.
    stack.spawn("sim-inverter", [*enerbox, "sim", "inverter", "--port", str(inverter_port),
                                 "--follow", f"127.0.0.1:{stack.port}", "--config", config,
                                 "--state", str(counters(sim_dir, "sim-inverter"))])
    # Two DS18B20 probes in the water heater's tank (a fake sysfs tree), heating with it.
    stack.spawn("sim-onewire", [*enerbox, "sim", "onewire", "--root", str(sim_dir / "w1"),
                                "--follow", f"127.0.0.1:{stack.port}", "--config", config])
    deadline = time.monotonic() + 10
    links = [sim_dir / name for name in ("tic0", "vedirect0", "vedirect1")]
    links.append(sim_dir / "w1" / TANK_TOP)  # the tree is written: the first scan finds it
    while not (all(link.exists() for link in links) and _listening(inverter_port)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)


def main(port: int = 1883, run_dir: Path = RUN_DIR, single_process: bool = False) -> int:
    """Run until Ctrl-C; returns the exit code."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "sim").mkdir(exist_ok=True)
    stack = Stack(run_dir, port)
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    enerbox = [sys.executable, "-m", "services.app.cli"]
    sim_dir = (run_dir / "sim").resolve()
    try:
        if not _start_broker(stack):
            return 1
        config = os.environ.get("ENERBOX_CONFIG", "config/enerbox.yaml")
        inverter_port = _inverter_port()
        _start_simulators(stack, enerbox, sim_dir, config, inverter_port)
        env = {
            "ENERBOX_CONFIG": config,
            "ENERBOX_MQTT__HOST": "127.0.0.1",
            "ENERBOX_MQTT__PORT": str(port),
            "ENERBOX_TELEINFO__METERS": json.dumps(
                [{"id": "linky", "name": "Linky (simulé)", "port": str(sim_dir / "tic0")}]
            ),
            "ENERBOX_VEDIRECT__PORTS": json.dumps([
                {"port": str(sim_dir / "vedirect0"), "name": "SmartShunt (simulé)"},
                {"port": str(sim_dir / "vedirect1"), "name": "SmartSolar (simulé)"},
            ]),
            "ENERBOX_TEMPERATURE__ROOT": str(sim_dir / "w1"),
            # The dummy screen's frames next to the logs (the api serves them from there).
            "ENERBOX_DISPLAY__FRAMES_DIR": str(sim_dir.parent / "display"),
            "ENERBOX_INVERTER__BUSES": json.dumps([{
                "name": "sim", "protocol": "modbus-tcp", "host": "127.0.0.1",
                "port": inverter_port, "timeout_s": 1,
                "devices": [
                    {"id": "inverter", "name": "Onduleur (simulé)", "address": 1,
                     "kind": "sunspec"},
                    {"id": "meter", "name": "Compteur réseau (simulé)", "address": 2,
                     "kind": "sunspec"},
                ],
            }]),
            # Simulated boards: gpiozero's mock pins, and an MCP23017 kept in a JSON file.
            "GPIOZERO_PIN_FACTORY": "mock",
            "ENERBOX_RELAYS__BOARDS": json.dumps([
                {"id": "gpio", "driver": "gpio"},
                {"id": "remora", "driver": "mcp23017", "address": 0x20,
                 "bus": f"fake:{sim_dir.parent / 'remora.json'}"},
            ]),
            "ENERBOX_SHEDDING__RESTORE_DELAY_S": "30",
            "ENERBOX_API__HOST": "127.0.0.1",
            "ENERBOX_API__PORT": os.environ.get("ENERBOX_API__PORT", "8080"),
            "ENERBOX_API__TOKEN": os.environ.get("ENERBOX_API__TOKEN", "sim-token"),
            "ENERBOX_GENERAL__DATA_DIR": str(sim_dir.parent / "data"),
        }
        if single_process:  # the Pi Zero way: every service as a thread of one process
            stack.spawn("all", [*enerbox, "run", "all"], env)
        else:
            for service in STACK_SERVICES:
                if service in SERVICES:  # automation: once it is registered
                    stack.spawn(service, [*enerbox, "run", service], env)
        api_port = env["ENERBOX_API__PORT"]
        topics = Topics(env.get("ENERBOX_MQTT__PREFIX", "enerbox"), "sim")
        print(
            f"enerbox is running with simulated devices: http://127.0.0.1:{api_port}/ "
            f"(write token {env['ENERBOX_API__TOKEN']!r}); logs in run/*.log. Watch MQTT with:\n"
            f"  mosquitto_sub -h 127.0.0.1 -p {port} -t '{topics.everything}' -v\n"
            f"  mosquitto_sub -h 127.0.0.1 -p {port} -t '{topics.any_device(TopicKind.STATE)}'\n"
            f"  mosquitto_sub -h 127.0.0.1 -p {port} -t '{topics.any_service(TopicKind.EVENTS)}'"
            f"   # a simulated peak at {PEAK_AT_S} s: shed, then restored 30 s later\n"
            f"  mosquitto_sub -h 127.0.0.1 -p {port} -t '{topics.prefix}/automation/#' -v"
            "   # the water heater on by surplus within 2 minutes, and why\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            dead = stack.dead()
            if dead:
                print(f"stopped: {', '.join(dead)} exited; see run/<name>.log", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stack.stop()
        print("enerbox stack stopped.")
