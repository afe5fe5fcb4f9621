"""Processes the fault run owns: mosquitto on a free port, services in their own groups."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def rss_kb(pid: int, key: str = "VmRSS") -> int | None:
    """A /proc/<pid>/status memory figure in kB (VmRSS, VmHWM), None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


class Proc:
    """A child in its own session (so a kill reaches all it started), output to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again) the process."""
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """Process id of the running child."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the child runs."""
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """The fault: SIGKILL to the whole process group, then reap it."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the group; SIGKILL what is left after ``timeout``."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        # Grandchildren left in the group (none expected) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def mosquitto_binary() -> str:
    """Path of mosquitto; RuntimeError when it is not installed."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise RuntimeError("mosquitto is not installed: `make faults` installs it")
    return found


# What a fault run takes from the shipped broker config when it must behave like the box's.
DURABILITY = ("persistence", "autosave_interval", "autosave_on_changes", "max_queued_messages",
              "persistent_client_expiration")


def shipped_durability() -> list[str]:
    """The durability lines of mosquitto/mosquitto.conf, as the box runs them."""
    shipped = Path(__file__).resolve().parents[1] / "mosquitto" / "mosquitto.conf"
    return [line.strip() for line in shipped.read_text(encoding="utf-8").splitlines()
            if line.split(maxsplit=1)[:1] and line.split(maxsplit=1)[0] in DURABILITY]


def start_broker(work: Path, env: dict[str, str], *, durable: bool = False) -> tuple[Proc, int]:
    """A mosquitto of our own on a free loopback port (as tests/conftest.py's Broker);
    ``durable``: with the shipped persistence settings, its database in ``work``."""
    port = free_port()
    conf = work / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "set_tcp_nodelay true",
             "log_dest stderr", "log_type error", "log_type warning"]
    if durable:
        # Run as root, mosquitto drops to the user `mosquitto`, which may not write here.
        lines += [*shipped_durability(), f"persistence_location {work}/",
                  f"user {getpass.getuser()}"]
    else:
        lines.append("persistence false")
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = Proc("mosquitto", [mosquitto_binary(), "-c", str(conf)], env, work)
    proc.start()
    deadline = time.monotonic() + 10
    while not listening(port):
        if time.monotonic() > deadline or not proc.alive():
            proc.stop()
            raise RuntimeError(f"mosquitto did not start; see {proc.log_path}")
        time.sleep(0.05)
    return proc, port
