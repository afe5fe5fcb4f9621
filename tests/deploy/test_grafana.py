"""Grafana provisioning and dashboards (grafana/): every file parses, every panel uses the
provisioned datasource, and every Flux query names measurements, fields and tags that the
historian really writes (services/historian/points.py: measurement = service, tags device,
phase, index, fields = the numeric normalized fields), so a renamed field breaks this test
instead of leaving an empty panel on a user's screen."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.fields import FieldSpec
from services.historian.points import SKIP, flatten
from services.relays.config import RelayConfig
from services.relays.drivers.gpio import GpioBoard
from services.relays.model import RelayState
from services.relays.outputs import RelayOutput
from services.relays.service import Relay
from services.shedding.config import SheddingConfig
from services.shedding.logic import Shedder
from services.teleinfo.fields import FIELDS as TELEINFO_FIELDS
from services.vedirect.fields import FIELDS as VEDIRECT_FIELDS

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_FILE = GRAFANA / "provisioning" / "datasources" / "influxdb.yaml"
PROVIDER_FILE = GRAFANA / "provisioning" / "dashboards" / "enerbox.yaml"
DATASOURCE_UID = "enerbox-influxdb"
# Where docker-compose mounts grafana/dashboards and grafana/provisioning in the container.
DASHBOARDS_IN_CONTAINER = "/var/lib/grafana/dashboards"
PROVISIONING_IN_CONTAINER = "/etc/grafana/provisioning"
DATASOURCE_ENV = ("INFLUXDB_ORG", "INFLUXDB_BUCKET", "VICTORIAMETRICS_URL")

# relays: the numeric keys of Relay.status() (services/relays/service.py); state/order, mode,
# source, until and shed_reason are strings, which the historian does not write.
RELAYS_FIELDS = frozenset({"shed", "readback_ok", "on_time_today_s"})
# shedding: the numeric keys of Shedder.state() (services/shedding/logic.py); `shed` is a
# list of relay ids (strings).
SHEDDING_FIELDS = frozenset({"limit_va", "load_va", "stale"})
# Services without a fields table yet: DESIGN.md's numeric names (`mppt`, a list of objects,
# is not written). Their services/<name>/fields.py FIELDS replaces these once it exists.
DESIGN_FIELDS = {
    "pulses": frozenset({"energy_wh", "power_w", "pulses_total", "wh_per_pulse"}),
    "inverter": frozenset({
        "ac_power_w", "ac_energy_wh", "ac_voltage_v", "ac_current_a", "ac_frequency_hz",
        "dc_power_w", "dc_voltage_v", "dc_current_a", "temperature_c", "power_w",
        "power_phase_w", "energy_import_wh", "energy_export_wh",
    }),
}
TAGS = frozenset({"device", "phase", "index"})
# Grafana unit ids (a typo is not an error in Grafana: it shows as a literal suffix).
UNITS = frozenset({
    "none", "short", "percent", "percentunit", "watt", "kwatt", "watth", "kwatth", "voltamp",
    "kvoltamp", "volt", "amp", "hertz", "celsius", "s", "ms", "m", "h", "d", "dtdurations",
    "currencyEUR",
})


def written_fields(table: Iterable[FieldSpec]) -> frozenset[str]:
    """Keys of a field table that end up in InfluxDB: numbers and booleans. flatten() leaves
    strings (ids, names, enumerations, timestamps) out; a number has a unit, a state class or
    is an enumeration's `_code`, a boolean is a binary sensor. (`overload_phases`, a list of
    phase numbers, is written but is no measurement: it is left out here on purpose.)"""
    return frozenset(
        f.key for f in table
        if f.key not in SKIP and (f.unit or f.state_class or f.component == "binary_sensor"
                                  or f.key.endswith("_code"))
    )


def _design_or_table(service: str) -> frozenset[str]:
    if importlib.util.find_spec(f"services.{service}") is not None and \
            importlib.util.find_spec(f"services.{service}.fields") is not None:
        module = importlib.import_module(f"services.{service}.fields")
        return written_fields(module.FIELDS)
    return DESIGN_FIELDS[service]


ALLOWED: dict[str, frozenset[str]] = {
    "teleinfo": written_fields(TELEINFO_FIELDS),
    "vedirect": written_fields(VEDIRECT_FIELDS),
    "relays": RELAYS_FIELDS,
    "shedding": SHEDDING_FIELDS,
    "pulses": _design_or_table("pulses"),
    "inverter": _design_or_table("inverter"),
}

# Filters the checker understands; any other use of _measurement or _field (a regex, `!=`,
# contains(), a set() or a map()) is reported, since it could name anything unchecked.
_EQ = r'\s*==\s*"([^"]*)"'
_MEASUREMENT = re.compile(r'r(?:\._measurement|\["_measurement"\])' + _EQ)
_FIELD = re.compile(r'r(?:\._field|\["_field"\])' + _EQ)
_TAG_COMPARISON = re.compile(r'r(?:\.(\w+)|\["(\w+)"\])\s*(?:==|!=|=~|!~)')
_TAG_ARG = re.compile(r'\btag:\s*"([^"]*)"')
_PHASE = re.compile(r'r(?:\.phase|\["phase"\])' + _EQ)
_BUCKET = re.compile(r"\bbucket:\s*([^,)\s]+)")
_VARIABLE = re.compile(r"\$\{(\w+)|\$(\w+)")


def query_errors(query: str, variables: Iterable[str] = ()) -> list[str]:
    """What is wrong with one Flux query, in words (empty: nothing)."""
    errors: list[str] = []
    measurements = _MEASUREMENT.findall(query)
    fields = _FIELD.findall(query)
    for name, found in (("_measurement", measurements), ("_field", fields)):
        if query.count(name) != len(found):
            errors.append(f"{name} used other than as r.{name} == \"...\": cannot be checked")
    if not measurements:
        errors.append("no r._measurement == \"...\" filter")
    allowed: set[str] = set()
    for m in measurements:
        if m not in ALLOWED:
            errors.append(f"measurement {m!r} is not written by enerbox ({sorted(ALLOWED)})")
        else:
            allowed |= ALLOWED[m]
    errors += [f"field {f!r} is not written to {'/'.join(measurements)}"
               for f in fields if f not in allowed]
    for a, b in _TAG_COMPARISON.findall(query):
        tag = a or b
        if not tag.startswith("_") and tag not in TAGS:
            errors.append(f"tag {tag!r} is not written by enerbox ({sorted(TAGS)})")
    errors += [f"tag {t!r} is not written by enerbox" for t in _TAG_ARG.findall(query)
               if t not in TAGS]
    errors += [f"phase {p!r} is not 1, 2 or 3" for p in _PHASE.findall(query)
               if p not in ("1", "2", "3")]
    errors += [f"bucket {b} instead of v.defaultBucket (the bucket comes from the env)"
               for b in _BUCKET.findall(query) if b != "v.defaultBucket"]
    known = set(variables)
    for a, b in _VARIABLE.findall(query):
        name = a or b
        if not name.startswith("__") and name not in known:
            errors.append(f"variable ${name} is not defined by the dashboard")
    return errors


# -- helpers -----------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a JSON object"
    return data


def _panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in container.get("panels", []):
        yield panel
        yield from _panels(panel)


def _variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return variables


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, Flux text) of every panel target and every query variable."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} {target.get('refId')}", target.get("query", "")
    for var in _variables(dashboard):
        if var.get("type") == "query":
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, dict) else query
            yield f"variable {var.get('name')!r}", str(text or "")


def _units(panel: dict[str, Any]) -> Iterator[str]:
    config = panel.get("fieldConfig", {})
    unit = config.get("defaults", {}).get("unit")
    if unit is not None:
        yield unit
    for override in config.get("overrides", []):
        for prop in override.get("properties", []):
            if prop.get("id") == "unit":
                yield prop["value"]


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: not a YAML mapping"
    return data


# -- the checker itself ------------------------------------------------------------------------


def test_checker_rejects_unknown_names() -> None:
    good = ('from(bucket: v.defaultBucket) |> range(start: -1h)\n'
            '  |> filter(fn: (r) => r._measurement == "teleinfo" and r._field == "voltage_v")\n'
            '  |> filter(fn: (r) => r.device =~ /^${meter:regex}$/ and r.phase == "2")')
    assert query_errors(good, ["meter"]) == []
    for bad, expected in (
        (good.replace("voltage_v", "voltage_volts"), "field 'voltage_volts'"),
        (good.replace("voltage_v", "tariff_option"), "field 'tariff_option'"),  # a string
        (good.replace('"teleinfo"', '"linky"'), "measurement 'linky'"),
        (good.replace("r.device", "r.meter"), "tag 'meter'"),
        (good.replace('"2"', '"L2"'), "phase 'L2'"),
        (good.replace("v.defaultBucket", '"enerbox"'), "bucket"),
        (good.replace('r._field == "voltage_v"', "r._field =~ /volt/"), "_field used other"),
        (good, "variable $meter"),
    ):
        errors = query_errors(bad, [] if bad is good else ["meter"])
        assert any(expected in e for e in errors), (expected, errors)


def test_allowed_fields_match_what_relays_and_shedding_publish() -> None:
    """The explicit lists above against the code's own state messages, through flatten()."""
    cfg = RelayConfig(id="boiler", board="gpio", channel=17)
    relay = Relay(cfg, RelayOutput(cfg, GpioBoard("gpio")), RelayState(shed=True))
    relay.readback_ok = True
    shedder = Shedder(SheddingConfig(), limit_va=[9200.0], load_va=[1200.0])
    for service, state, expected in (
        ("relays", relay.status(), RELAYS_FIELDS),
        ("shedding", shedder.state(0.0), SHEDDING_FIELDS),
    ):
        points = flatten(service, "dev", state, 0.0)
        assert {key for p in points for key, _ in p.fields} == expected, service


def test_allowed_fields_include_the_dashboards_essentials() -> None:
    for service, key in (("teleinfo", "apparent_power_va"), ("teleinfo", "voltage_v"),
                         ("teleinfo", "energy_import_by_index_wh"), ("vedirect", "soc_pct"),
                         ("vedirect", "charge_state_code"), ("vedirect", "load_on")):
        assert key in ALLOWED[service]
    for service, key in (("teleinfo", "meter_id"), ("teleinfo", "tariff_period"),
                         ("vedirect", "serial"), ("vedirect", "charge_state"),
                         ("vedirect", "product_id")):
        assert key not in ALLOWED[service], "strings are never written to InfluxDB"


# -- dashboards --------------------------------------------------------------------------------


def test_there_are_dashboards() -> None:
    names = {p.name for p in DASHBOARD_FILES}
    assert len(names) >= 5, names


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_shape(path: Path) -> None:
    dashboard = _load(path)
    for key in ("title", "uid", "panels", "schemaVersion"):
        assert key in dashboard, f"{path.name}: no {key}"
    assert isinstance(dashboard["uid"], str)
    assert 0 < len(dashboard["uid"]) <= 40  # Grafana's limit
    assert dashboard["editable"] is True
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["panels"], f"{path.name}: no panels"
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"
    ids = [p.get("id") for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat: {ids}"


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = [_load(p) for p in DASHBOARD_FILES]
    for key in ("uid", "title"):
        values = [d[key] for d in dashboards]
        assert len(values) == len(set(values)), f"repeated {key}: {values}"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_query_uses_the_provisioned_datasource(path: Path) -> None:
    dashboard = _load(path)
    wrong: list[str] = []
    for panel in _panels(dashboard):
        if panel.get("type") in ("row", "text"):
            continue
        title = panel.get("title")
        if (panel.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            wrong.append(f"panel {title!r}: datasource {panel.get('datasource')}")
        assert panel.get("targets"), f"panel {title!r} has no query"
        wrong += [f"panel {title!r} {t.get('refId')}: datasource {t.get('datasource')}"
                  for t in panel["targets"]
                  if (t.get("datasource") or {}).get("uid") != DATASOURCE_UID]
    wrong += [f"variable {v.get('name')!r}: datasource {v.get('datasource')}"
              for v in _variables(dashboard)
              if v.get("type") == "query"
              and (v.get("datasource") or {}).get("uid") != DATASOURCE_UID]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_query_names_what_enerbox_writes(path: Path) -> None:
    dashboard = _load(path)
    variables = [v["name"] for v in _variables(dashboard)]
    problems = [f"{where}: {error}"
                for where, query in _queries(dashboard)
                for error in query_errors(query, variables)]
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_units_are_grafana_units(path: Path) -> None:
    bad = [(p.get("title"), u) for p in _panels(_load(path)) for u in _units(p)
           if u not in UNITS and not u.startswith("suffix:")]
    assert not bad, f"{path.name}: unknown units {bad}"


# -- provisioning ------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    data = _yaml(DATASOURCE_FILE)
    assert data["apiVersion"] == 1
    (source,) = [d for d in data["datasources"] if d.get("uid") == DATASOURCE_UID]
    assert source["type"] == "influxdb"
    assert source["url"] == "http://influxdb:8086"
    json_data, secure = source["jsonData"], source["secureJsonData"]
    assert json_data["version"] == "Flux"
    assert json_data["organization"] == "${INFLUXDB_ORG}"
    assert json_data["defaultBucket"] == "${INFLUXDB_BUCKET}"
    # The file mqtt-init makes in the secrets volume (test_database_secrets.py).
    assert secure["token"] == "$__file{/secrets/grafana-influxdb-token}"


def test_dashboard_provider_points_at_the_dashboards() -> None:
    data = _yaml(PROVIDER_FILE)
    assert data["apiVersion"] == 1
    # (the second provider, grafana/dashboards-victoriametrics: test_grafana_vm.py)
    (provider,) = [p for p in data["providers"] if p["name"] == "enerbox"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_IN_CONTAINER
    # Grafana reads provisioning/<kind>/*.yaml: both files sit where it looks.
    assert DATASOURCE_FILE.parent.name == "datasources"
    assert PROVIDER_FILE.parent.name == "dashboards"
    assert DATASOURCE_FILE.parent.parent == PROVIDER_FILE.parent.parent


def _compose_grafana() -> dict[str, Any]:
    for name in ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"):
        if (ROOT / name).exists():
            services: dict[str, Any] = _yaml(ROOT / name).get("services", {})
            for key, service in services.items():
                if key == "grafana" or "grafana" in str(service.get("image", "")):
                    return dict(service)
            pytest.fail(f"{name} has no grafana service")
    pytest.skip("no docker-compose file yet")


def _container_path(mounts: list[Any], repo_dir: Path) -> str | None:
    """Where repo_dir appears in the container, through one of the bind mounts."""
    for mount in mounts:
        if isinstance(mount, dict):
            source, target = str(mount.get("source", "")), str(mount.get("target", ""))
        else:
            source, _, rest = str(mount).partition(":")
            target = rest.split(":")[0]
        if not source.startswith((".", "/")):
            continue  # a named volume
        host = (ROOT / source).resolve()
        if repo_dir == host or host in repo_dir.parents:
            return str(Path(target) / repo_dir.relative_to(host))
    return None


def test_compose_mounts_what_the_provisioning_expects() -> None:
    grafana = _compose_grafana()
    mounts = grafana.get("volumes", [])
    assert _container_path(mounts, GRAFANA / "dashboards") == DASHBOARDS_IN_CONTAINER
    assert _container_path(mounts, GRAFANA / "dashboards-victoriametrics") == \
        "/var/lib/grafana/dashboards-victoriametrics"
    for kind in ("datasources", "dashboards"):
        assert _container_path(mounts, GRAFANA / "provisioning" / kind) == \
            f"{PROVISIONING_IN_CONTAINER}/{kind}"
    env = grafana.get("environment", {})
    names = set(env) if isinstance(env, dict) else {str(e).split("=")[0] for e in env}
    if not grafana.get("env_file"):
        missing = [n for n in DATASOURCE_ENV if n not in names]
        assert not missing, f"the grafana service does not pass {missing}"
