"""The VictoriaMetrics dashboards (grafana/dashboards-victoriametrics/, a Prometheus-type
datasource): every query is checked statically (the metric names the historian writes, the
provisioned datasource, defined variables) and then run, with Grafana's macros and variables
substituted as Grafana does, against a real VictoriaMetrics that a real historian process fed
from MQTT: each returns data of the panel's shape (the labels its legend names, one point per
day for the daily panels, min <= mean <= max for the voltage range).

Grafana itself is not installable here (no Debian package; `apt-cache policy grafana` is
empty): the queries go through VictoriaMetrics' HTTP API, the one Grafana's proxy calls."""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import RUN_ID, Broker, wait_until
from tests.deploy.test_grafana import ALLOWED, GRAFANA, UNITS, _load, _panels, _units
from tests.historian.vm import VM, victoria_metrics
from tests.teleinfo.test_service import Proc

VM_DASHBOARDS = sorted((GRAFANA / "dashboards-victoriametrics").glob("*.json"))
FLUX_DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_FILE = GRAFANA / "provisioning" / "datasources" / "victoriametrics.yaml"
PROVIDER_FILE = GRAFANA / "provisioning" / "dashboards" / "enerbox.yaml"
UID = "enerbox-victoriametrics"
LABELS = frozenset({"device", "phase", "index", "site", "db"})
DAY_S = 86400
INTERVAL_S = 300  # $__interval of a 2-day range on a ~1000 px wide panel (Grafana rounds to 5m)
_METRIC = re.compile(r"\b([a-z]+_[a-z0-9_]+)\{")
_LABEL = re.compile(r"(\w+)=~?\"")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def _variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = dashboard["templating"]["list"]
    return variables


def _var_query(var: dict[str, Any]) -> str:
    query = var["query"]
    return str(query["query"] if isinstance(query, dict) else query)


# -- static ------------------------------------------------------------------------------------


def test_there_is_a_victoriametrics_twin_of_each_dashboard() -> None:
    assert {p.name for p in VM_DASHBOARDS} == {p.name for p in FLUX_DASHBOARDS}
    uids = [_load(p)["uid"] for p in VM_DASHBOARDS + FLUX_DASHBOARDS]
    titles = [_load(p)["title"] for p in VM_DASHBOARDS + FLUX_DASHBOARDS]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    assert all(0 < len(u) <= 40 for u in uids)


@pytest.mark.parametrize("path", VM_DASHBOARDS, ids=lambda p: p.name)
def test_queries_name_what_the_historian_writes(path: Path) -> None:
    dashboard = _load(path)
    names = {v["name"] for v in _variables(dashboard)}
    written = {f"{m}_{f}" for m, fields in ALLOWED.items() for f in fields}
    problems: list[str] = []
    queries = [(f"panel {p['title']!r} {t['refId']}", t["expr"], t.get("datasource"))
               for p, t in _targets(dashboard)]
    queries += [(f"variable {v['name']}", _var_query(v), v.get("datasource"))
                for v in _variables(dashboard)]
    for where, expr, source in queries:
        if (source or {}).get("uid") != UID:
            problems.append(f"{where}: datasource {source}")
        problems += [f"{where}: metric {m} is not written" for m in _METRIC.findall(expr)
                     if m not in written]
        problems += [f"{where}: label {label} is not written" for label in _LABEL.findall(expr)
                     if label not in LABELS]
        problems += [f"{where}: ${a or b} is not defined" for a, b in _VARIABLE.findall(expr)
                     if not (a or b).startswith("__") and (a or b) not in names]
    for panel in _panels(dashboard):
        if panel.get("type") not in ("row", "text") and \
                (panel.get("datasource") or {}).get("uid") != UID:
            problems.append(f"panel {panel['title']!r}: datasource {panel.get('datasource')}")
        problems += [f"unit {u}" for u in _units(panel)
                     if u not in UNITS and not u.startswith("suffix:")]
    assert not problems, "\n".join(problems)


def test_datasource_and_provider_provisioning() -> None:
    data = yaml.safe_load(DATASOURCE_FILE.read_text(encoding="utf-8"))
    (source,) = data["datasources"]
    assert (source["uid"], source["type"]) == (UID, "prometheus")
    assert source["url"] == "${VICTORIAMETRICS_URL}"
    assert source.get("isDefault") is not True  # InfluxDB's stays the default
    providers = yaml.safe_load(PROVIDER_FILE.read_text(encoding="utf-8"))["providers"]
    paths = {p["options"]["path"]: p["folderUid"] for p in providers}
    assert paths == {"/var/lib/grafana/dashboards": "enerbox",
                     "/var/lib/grafana/dashboards-victoriametrics": "enerbox-victoriametrics"}


# -- against a real VictoriaMetrics fed by the historian ---------------------------------------


def _state(service: str, i: int) -> dict[str, Any]:
    """Reading number i of each device: what the services publish (numbers that change)."""
    if service == "teleinfo":
        return {"apparent_power_va": 800 + i, "injected_power_va": i % 7,
                "apparent_power_phase_va": [300 + i, 200, 300], "current_a": [1.5, 1.0, 2.0],
                "voltage_v": [228 + i % 5, 231 - i % 3, 233], "meter_id": "031999000001",
                "energy_import_wh": 1_000_000 + 50 * i, "energy_export_wh": 20_000 + 5 * i,
                "energy_import_by_index_wh": {"HC": 600_000 + 20 * i, "HP": 400_000 + 30 * i}}
    if service == "battery":
        return {"soc_pct": 50 + i % 40, "battery_voltage_v": 13.1, "battery_current_a": -2.5,
                "power_w": -32, "time_to_go_min": 600 - i, "consumed_ah": -12.5,
                "temperature_c": 18.5}
    if service == "mppt":
        return {"pv_power_w": 100 + i % 50, "yield_total_kwh": 100 + 0.2 * i,
                "battery_voltage_v": 13.2}
    if service == "inverter":
        return {"ac_power_w": 1500 + i % 100, "ac_energy_wh": 5_000_000 + 100 * i}
    if service == "relays":
        return {"shed": i % 10 == 0, "readback_ok": True, "on_time_today_s": 60 * (i % 96),
                "state": "on"}
    return {"limit_va": [9200, 9200, 9200], "load_va": [800 + i, 600, 700],  # shedding
            "stale": False}


TOPICS = {"teleinfo": "teleinfo/linky", "battery": "vedirect/bmv712", "mppt": "vedirect/mppt",
          "inverter": "inverter/fronius", "relays": "relays/boiler",
          "shedding": "shedding/shedder"}
DEVICES = {"battery": "bmv712", "meter": "linky", "relay": "boiler", "shedder": "shedder"}


def _fed(tmp_path: Path, broker: Broker, prefix: str, vm: VM) -> tuple[int, int]:
    """A historian process fed 49 h of readings, 15 min apart; (first, last) epoch seconds."""
    config = {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "historian": {"max_clock_skew_s": 10**9,
                      "influxdb": {"enabled": True, "url": vm.url, "token": "unused"}},
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    proc = Proc([sys.executable, "-m", "services.historian"], tmp_path / "historian.log",
                {"ENERBOX_CONFIG": str(path)}).start()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    last = int(time.time()) // 900 * 900 - 900
    steps = 49 * 4
    first = last - (steps - 1) * 900
    try:
        probe = {"apparent_power_va": 1, "ts": _iso(first - DAY_S * 9)}

        def stored() -> bool:
            if vm.export('teleinfo_apparent_power_va{device="probe"}'):
                return True
            client.publish(f"{prefix}/teleinfo/probe/journal", json.dumps(probe), qos=1)
            return False

        wait_until(stored, 30, "the historian's first state")  # its durable session exists
        for i in range(steps):
            for service, topic in TOPICS.items():
                state = {**_state(service, i), "ts": _iso(first + i * 900)}
                client.publish(f"{prefix}/{topic}/journal", json.dumps(state), qos=1)
        counted = ("teleinfo_apparent_power_va", "vedirect_soc_pct", "vedirect_pv_power_w",
                   "inverter_ac_power_w", "relays_shed", "shedding_stale")

        def arrived() -> bool:
            series = vm.export(f'{{__name__=~"{"|".join(counted)}",device!="probe"}}')
            return len(series) == len(counted) and all(len(s.values) == steps for s in series)

        wait_until(arrived, 60, f"the readings in VictoriaMetrics:\n{proc.log[-2000:]}")
    finally:
        client.loop_stop()
        client.disconnect()
        proc.stop()
    return first, last


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _regex(value: str) -> str:
    """A variable value as Grafana's Prometheus datasource puts it in a regex matcher."""
    escaped = re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)
    return escaped.replace("\\", "\\\\")


def _substitute(text: str, values: dict[str, str], interval_s: int, range_s: int) -> str:
    text = text.replace("$__range", f"{range_s}s").replace("$__interval", f"{interval_s}s")
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], text)


def _api(vm: VM, path: str, **params: str) -> Any:
    url = f"{vm.url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def _legend_labels(legend: str) -> set[str]:
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))


@pytest.fixture(scope="module")
def fed_vm(tmp_path_factory: pytest.TempPathFactory,
           broker: Broker) -> Iterator[tuple[VM, str, int, int]]:
    """One VictoriaMetrics fed once for the module's tests (their own prefix: the site)."""
    tmp_path = tmp_path_factory.mktemp("grafana-vm")
    prefix = f"enerbox-test/{RUN_ID}/grafana-vm"
    with victoria_metrics(tmp_path, dedup=True) as vm:
        first, last = _fed(tmp_path, broker, prefix, vm)
        yield vm, prefix, first, last


def test_every_query_answers_with_data_of_its_panels_shape(
    fed_vm: tuple[VM, str, int, int],
) -> None:
    vm, site, first, last = fed_vm
    start, end = first, last + 60
    range_s = end - start
    problems: list[str] = []
    answered = 0
    for path in VM_DASHBOARDS:
        dashboard = _load(path)
        # One site and device chosen, as a user picks them; then "All" (Grafana's allValue).
        for pick in ("one", "all"):
            values = {v["name"]: ".*" if pick == "all" else _regex(
                site if v["name"] == "site" else DEVICES[v["name"]])
                for v in _variables(dashboard)}
            for var in _variables(dashboard):
                query = _substitute(_var_query(var), values, INTERVAL_S, range_s)
                match = re.fullmatch(r"label_values\((?:(.+), )?(\w+)\)", query)
                assert match, query
                params = {"start": str(start), "end": str(end)}
                if match.group(1):
                    params["match[]"] = match.group(1)
                found = _api(vm, f"/api/v1/label/{match.group(2)}/values", **params)
                want = site if var["name"] == "site" else DEVICES[var["name"]]
                if want not in found:
                    problems.append(f"{path.name} variable {var['name']}: {found}")
            for panel, target in _targets(dashboard):
                where = f"{path.name} {panel['title']!r} {target['refId']} ({pick})"
                problems += _check(vm, where, panel, target, values, start, end, range_s)
                answered += 1
    assert not problems, "\n".join(problems)
    assert answered >= 2 * 30


def _check(vm: VM, where: str, panel: dict[str, Any], target: dict[str, Any],
           values: dict[str, str], start: int, end: int, range_s: int) -> list[str]:
    daily = target.get("interval") == "1d"
    step = DAY_S if daily else INTERVAL_S
    expr = _substitute(target["expr"], values, step, range_s)
    labels = _legend_labels(target.get("legendFormat", ""))
    if target.get("instant"):
        data = _api(vm, "/api/v1/query", query=expr, time=str(end))
        if data["resultType"] != "vector" or not data["result"]:
            return [f"{where}: {expr} -> {data}"]
        rows = [(r["metric"], [r["value"]]) for r in data["result"]]
    else:
        # Grafana aligns the range on the step.
        data = _api(vm, "/api/v1/query_range", query=expr, step=str(step),
                    start=str(start // step * step), end=str(end // step * step + step))
        if data["resultType"] != "matrix" or not data["result"]:
            return [f"{where}: {expr} -> {data}"]
        rows = [(r["metric"], r["values"]) for r in data["result"]]
    problems = []
    for metric, points in rows:
        if not labels <= set(metric):
            problems.append(f"{where}: legend needs {labels}, series has {metric}")
        numbers = [float(v) for _, v in points]
        if not numbers or not all(math.isfinite(n) for n in numbers):
            problems.append(f"{where}: {metric} values {numbers[:5]}")
        if daily and len(points) < 2:
            problems.append(f"{where}: {metric} {len(points)} day(s) over 49 h")
        if not daily and not target.get("instant") and len(points) < 48:
            problems.append(f"{where}: {metric} {len(points)} points over 49 h")
    if "phase" in labels:
        phases = {m.get("phase") for m, _ in rows}
        if phases != {"1", "2", "3"}:
            problems.append(f"{where}: phases {phases}")
    return problems


def test_the_daily_voltage_range_is_min_mean_max_per_phase(
    fed_vm: tuple[VM, str, int, int],
) -> None:
    vm, site, first, last = fed_vm
    dashboard = _load(GRAFANA / "dashboards-victoriametrics" / "voltage.json")
    (panel,) = [p for p in _panels(dashboard) if p["title"].startswith("Range of each day")]
    values = {"site": _regex(site), "meter": "linky"}
    by: dict[tuple[str, str, float], float] = {}
    for target in panel["targets"]:
        kind = target["legendFormat"].split()[-1]
        expr = _substitute(target["expr"], values, DAY_S, last - first)
        data = _api(vm, "/api/v1/query_range", query=expr, step=str(DAY_S),
                    start=str(first // DAY_S * DAY_S), end=str(last // DAY_S * DAY_S + DAY_S))
        for row in data["result"]:
            for t, v in row["values"]:
                by[(row["metric"]["phase"], kind, t)] = float(v)
    days = {t for _, _, t in by}
    assert len(days) >= 2
    for phase in "123":
        for day in days:
            low, mean, high = (by[(phase, k, day)] for k in ("min", "mean", "max"))
            assert low <= mean <= high, (phase, day, low, mean, high)
    # Phase 1 swings 228..232 V in the readings: a full day of them shows the whole swing.
    assert {(by[("1", "min", d)], by[("1", "max", d)]) for d in days} >= {(228.0, 232.0)}
