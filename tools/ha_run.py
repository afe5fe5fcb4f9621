"""Run a real Home Assistant against a real simulated stack and report what it made of it:
``.venv/bin/python tools/ha_run.py [--ha-venv /tmp/ha13] [--workdir /tmp/ha-run]``
(``make ha-run``; not part of ``make test``: it needs HA installed in its own venv, see
tools/ha_check.py).

It starts ``enerbox sim stack`` on free ports, a HA config directory with the MQTT config
entry written into .storage (broker 127.0.0.1:PORT, no password: the stack's mosquitto allows
anonymous clients) and no ``default_config:``, and a tiny custom integration that dumps HA's
MQTT devices, entities and states to enerbox_dump.json every few seconds. Meanwhile it
collects the stack's retained discovery messages and validates them with tools/ha_check.py.
Once the entity count has been stable for QUIET_S it stops HA and the stack and prints:
devices, entities, discovery errors from home-assistant.log and a few states.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from ha_collect import collect  # type: ignore[import-not-found, unused-ignore]

from faults.procs import free_port, listening  # the fault run's: one copy of each

ROOT = Path(__file__).resolve().parent.parent
QUIET_S = 30  # no new HA entity for this long: every discovery message processed
LIMIT_S = 420

CONFIGURATION = """\
homeassistant:
  name: enerbox check
  latitude: 48.85
  longitude: 2.35
  elevation: 35
  unit_system: metric
  time_zone: Europe/Paris
  country: FR
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {http_port}
logger:
  default: warning
enerbox_dump:
"""

DUMP_MANIFEST = {"domain": "enerbox_dump", "name": "enerbox dump", "version": "1.0.0",
                 "dependencies": ["mqtt"], "requirements": [], "codeowners": [],
                 "iot_class": "local_push"}

# Runs inside HA: what its registries and state machine hold for MQTT, as JSON.
DUMP_CODE = '''\
"""Dump HA's MQTT devices, entities and states to enerbox_dump.json (tools/ha_run.py)."""
import json
from datetime import timedelta
from pathlib import Path

from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.event import async_track_time_interval


async def async_setup(hass, config):
    out = Path(hass.config.path("enerbox_dump.json"))

    async def dump(_now=None):
        devices = [
            {"id": d.id, "name": d.name, "model": d.model, "manufacturer": d.manufacturer,
             "sw_version": d.sw_version}
            for d in dr.async_get(hass).devices.values()
            if any(i[0] == "mqtt" for i in d.identifiers)
        ]
        entities = []
        for e in er.async_get(hass).entities.values():
            if e.platform != "mqtt":
                continue
            s = hass.states.get(e.entity_id)
            entities.append({
                "entity_id": e.entity_id, "unique_id": e.unique_id, "device_id": e.device_id,
                "name": e.name or e.original_name, "unit": e.unit_of_measurement,
                "options": {k: dict(v) for k, v in e.options.items()},
                "entity_category": e.entity_category, "disabled_by": e.disabled_by,
                "state": s.state if s else None,
                "attributes": dict(s.attributes) if s else {},
            })
        text = json.dumps({"devices": devices, "entities": entities}, default=str,
                          ensure_ascii=False, indent=1)
        await hass.async_add_executor_job(out.write_text, text)

    async_track_time_interval(hass, dump, timedelta(seconds=5))
    return True
'''


# hass without its Python version check, for --ignore-python-version.
SKIP_PYTHON_CHECK = ("import sys, homeassistant.__main__ as m; m.validate_python = lambda: None; "
                     "sys.exit(m.main())")


def write_config(config_dir: Path, broker_port: int, http_port: int) -> None:
    """A HA config dir with the MQTT entry already set up (as the UI's flow would save it)."""
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION.format(http_port=http_port), encoding="utf-8")
    now = "2026-01-01T00:00:00+00:00"
    entry: dict[str, Any] = {
        "created_at": now, "modified_at": now, "data": {"broker": "127.0.0.1",
                                                        "port": broker_port},
        "discovery_keys": {}, "disabled_by": None, "domain": "mqtt",
        "entry_id": "01enerboxmqttcheck00000000", "minor_version": 2,
        "options": {"discovery": True, "discovery_prefix": "homeassistant"},
        "pref_disable_new_entities": False, "pref_disable_polling": False,
        "source": "user", "subentries": [], "title": f"127.0.0.1:{broker_port}",
        "unique_id": None, "version": 1,
    }
    (storage / "core.config_entries").write_text(json.dumps({
        "version": 1, "minor_version": 5, "key": "core.config_entries",
        "data": {"entries": [entry]}}), encoding="utf-8")
    dump = config_dir / "custom_components" / "enerbox_dump"
    dump.mkdir(parents=True, exist_ok=True)
    (dump / "manifest.json").write_text(json.dumps(DUMP_MANIFEST), encoding="utf-8")
    (dump / "__init__.py").write_text(DUMP_CODE, encoding="utf-8")


def stop(proc: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM to the process group it leads (start_new_session), SIGKILL after 60 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop on SIGTERM: killed", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_entities(dump: Path, hass: subprocess.Popen[bytes]) -> dict[str, Any]:
    """HA's dump once its MQTT entity count has not changed for QUIET_S."""
    end = time.monotonic() + LIMIT_S
    last, since = -1, time.monotonic()
    data: dict[str, Any] = {"devices": [], "entities": []}
    while time.monotonic() < end and hass.poll() is None:
        time.sleep(2)  # polling a file HA rewrites every 5 s: nothing to wait on
        if not dump.exists():
            continue
        try:
            data = json.loads(dump.read_text(encoding="utf-8"))
        except ValueError:  # caught mid-write
            continue
        count = len(data["entities"])
        if count != last:
            last, since = count, time.monotonic()
        elif count and time.monotonic() - since >= QUIET_S:
            break
    return data


def log_problems(log: Path) -> list[str]:
    """WARNING/ERROR lines about MQTT or discovery in home-assistant.log."""
    if not log.exists():
        return ["no home-assistant.log"]
    return [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
            if ("WARNING" in line or "ERROR" in line)
            and ("mqtt" in line.lower() or "discovery" in line.lower())]


def samples(entities: list[dict[str, Any]]) -> list[str]:
    """A few states as HA shows them: battery voltage with its precision, apparent power."""
    def wanted(e: dict[str, Any]) -> int:  # 0: not shown; lower first
        dc, uid = e["attributes"].get("device_class"), e["unique_id"]
        if dc == "voltage" and "vedirect" in uid:
            return 1
        return 2 if dc == "apparent_power" else 3 if dc == "energy" and "teleinfo" in uid else 0

    out = []
    for e in sorted((e for e in entities if wanted(e)), key=wanted):
        attrs = e["attributes"]
        sensor = e["options"].get("sensor", {})
        precision = sensor.get("display_precision", sensor.get("suggested_display_precision"))
        shown = e["state"]
        if precision is not None and shown not in (None, "unknown", "unavailable"):
            with contextlib.suppress(ValueError):
                shown = f"{float(shown):.{precision}f}"
        out.append(f"{e['entity_id']}: state {e['state']!r} {attrs.get('unit_of_measurement')}"
                   f" (device_class {attrs.get('device_class')}, display precision "
                   f"{precision}: shows {shown})")
    return out[:8]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ha-venv", default="/tmp/ha13", type=Path)  # noqa: S108
    parser.add_argument("--workdir", default="/tmp/ha-run", type=Path)  # noqa: S108
    parser.add_argument("--ignore-python-version", action="store_true",
                        help="start an HA that refuses this Python's patch version (e.g. "
                             "2026.2 on 3.13.0, installed with pip --ignore-requires-python)")
    args = parser.parse_args()
    work: Path = args.workdir
    config_dir, run_dir = work / "ha", work / "stack"
    for d in (config_dir, run_dir):
        subprocess.run(["rm", "-rf", str(d)], check=True)
    broker, api, http = free_port(), free_port(), free_port()
    write_config(config_dir, broker, http)
    ha_python = args.ha_venv / "bin" / "python"
    version = subprocess.run(
        [ha_python, "-c", "from homeassistant.const import __version__; print(__version__)"],
        capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "ENERBOX_API__PORT": str(api)}
    stack = subprocess.Popen(
        [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(broker),
         "--run-dir", str(run_dir)], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL)
    hass: subprocess.Popen[bytes] | None = None
    try:
        end = time.monotonic() + 60
        while not listening(broker):
            if stack.poll() is not None or time.monotonic() > end:
                print(f"the stack did not start; see {run_dir}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        log = config_dir / "home-assistant.log"
        hass_cmd: list[str | Path] = [args.ha_venv / "bin" / "hass"]
        if args.ignore_python_version:  # HA 2025.5+ wants 3.13.2; pyenv has 3.13.0
            hass_cmd = [ha_python, "-c", SKIP_PYTHON_CHECK]
        hass = subprocess.Popen(
            [*hass_cmd, "-c", str(config_dir), "--log-file", str(log)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        retained = collect("127.0.0.1", broker)
        stack_json = work / "stack-discovery.json"
        stack_json.write_text(json.dumps(retained, ensure_ascii=False, indent=1),
                              encoding="utf-8")
        check = subprocess.run([ha_python, ROOT / "tools" / "ha_check.py", stack_json],
                               capture_output=True, text=True, check=False)
        data = wait_entities(config_dir / "enerbox_dump.json", hass)
    finally:
        if hass is not None:
            stop(hass, "hass")
        stop(stack, "the stack")
    problems = log_problems(config_dir / "home-assistant.log")
    entities = data["entities"]
    print(f"Home Assistant {version} against `enerbox sim stack` (broker 127.0.0.1:{broker})")
    print("stack's discovery messages checked by tools/ha_check.py:\n  "
          + check.stdout.strip().replace("\n", "\n  "))
    print(f"HA created {len(data['devices'])} MQTT devices, {len(entities)} MQTT entities "
          f"({sum(1 for e in entities if e['entity_category'] == 'diagnostic')} diagnostic, "
          f"{sum(1 for e in entities if e['disabled_by'])} disabled, "
          f"{sum(1 for e in entities if e['state'] == 'unavailable')} unavailable, "
          f"{sum(1 for e in entities if e['state'] == 'unknown')} unknown)")
    for d in data["devices"]:
        n = sum(1 for e in entities if e["device_id"] == d["id"])
        print(f"  {d['name']} ({d['manufacturer']} {d['model']}): {n} entities")
    print(f"{len(problems)} MQTT/discovery warning or error lines in {log}")
    for line in problems[:20]:
        print(f"  {line}")
    print("a few states:")
    for line in samples(entities):
        print(f"  {line}")
    return 1 if problems or check.returncode or not entities else 0


if __name__ == "__main__":
    sys.exit(main())
