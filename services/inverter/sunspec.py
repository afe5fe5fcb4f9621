"""SunSpec over Modbus, pure: discovery of the model chain, request planning, decoding of the
models DESIGN.md maps, and the normalized inverter/meter fields. No I/O of its own: every
read goes through an injected ``Reader`` (one call = one Modbus request)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from services.inverter.sunspec_points import MODELS, Model, Point
from services.inverter.types import STATUSES, Chain, Decoded, ModelRef, Reader

MARKER = (0x5375, 0x6E53)  # "SunS"
END_ID = 0xFFFF
DEFAULT_BASES = (40000, 0, 50000)
MAX_MODELS = 64  # a real chain has ~20; more means garbage or a loop
MAX_LENGTH = 4096  # model 160 with 200 modules stays under this
MAX_REQUEST = 125  # Modbus: at most 125 holding registers per read
SF_RANGE = range(-10, 11)  # SunSpec scale factors are -10..10; anything else is garbage

INVERTER_MODELS = frozenset({101, 102, 103, 111, 112, 113})
METER_MODELS = frozenset({201, 202, 203, 204, 211, 212, 213, 214})


class DiscoveryError(Exception):
    """No SunSpec marker at any base tried."""


# --- discovery -----------------------------------------------------------------------------


def _try_read(read: Reader, address: int, count: int) -> list[int] | None:
    """A read that failed or came back short is None: discovery treats both as 'not there'."""
    try:
        regs = list(read(address, count))
    except Exception:  # any reader failure means "nothing readable here"
        return None
    return regs if len(regs) >= count else None


def _find_marker(read: Reader, bases: Sequence[int]) -> int:
    tried: list[int] = []
    for base in bases:
        # base+1: devices that answer with 1-based register numbers (SMA style)
        for address in (base, base + 1):
            tried.append(address)
            regs = _try_read(read, address, 2)
            if regs is not None and tuple(regs[:2]) == MARKER:
                return address
    raise DiscoveryError("no SunSpec 'SunS' marker at registers " + ", ".join(map(str, tried)))


def discover(read: Reader, bases: Sequence[int] = DEFAULT_BASES) -> Chain:
    """Find the marker and walk the model chain to its end model (0xFFFF).

    Tolerated: an end model without its length, a chain that runs past the readable range
    (the models read so far are kept), garbage (model id 0, an insane length, more than
    MAX_MODELS models: the walk stops there). Unknown models stay in the chain."""
    base = _find_marker(read, bases)
    models: list[ModelRef] = []
    address = base + 2
    while len(models) < MAX_MODELS:
        header = _try_read(read, address, 2)
        if header is None:  # the end model without its L, or the end of the readable range
            break
        model_id, length = header[0], header[1]
        if model_id in (END_ID, 0) or length > MAX_LENGTH or address + 2 + length > 0xFFFF:
            break
        models.append(ModelRef(model_id, address, length))
        address += 2 + length
    return Chain(base=base, models=tuple(models))


# --- request planning ----------------------------------------------------------------------


def _layout(model: Model, length: int) -> list[tuple[int, int, str | None, bool]]:
    """(offset, size, sf label or None, starts a repetition) of every known point within
    ``length`` registers."""
    out: list[tuple[int, int, str | None, bool]] = []
    for p in model.points:
        if p.offset + p.size <= length:
            out.append((p.offset, p.size, p.sf, False))
    group = model.group
    if group is not None:
        start = model.length
        while start + group.length <= length:
            for i, p in enumerate(group.points):
                out.append((start + p.offset, p.size, p.sf, i == 0))
            start += group.length
    return out


def _cut_classes(model_id: int, length: int) -> list[set[int]]:
    """Allowed cut offsets, best first. A model with a repeating group: its boundaries first
    (model 160: between modules; a module's values then share a read, their scale factors in
    the fixed part may not). Then cuts that separate no value from its scale factor; then any
    point boundary (never inside a value). Past the known layout every offset is a boundary."""
    model = MODELS.get(model_id)
    if model is None:
        return [set(range(1, length + 1))]
    layout = _layout(model, length)
    sf_offsets = {p.name: p.offset for p in model.points if p.type == "sunssf"}
    if model.group is not None:  # group sfs live in the fixed part (model 160)
        sf_offsets.update({p.name: p.offset for p in model.group.points if p.type == "sunssf"})
    known_end = max((o + s for o, s, _, _ in layout), default=0)
    starts = {o for o, _, _, _ in layout} | {known_end} | set(range(known_end, length + 1))
    starts.discard(0)
    pairs = [(min(o, sf_offsets[sf]), max(o, sf_offsets[sf])) for o, _, sf, _ in layout
             if sf is not None and sf in sf_offsets]
    clean = {c for c in starts if not any(lo < c <= hi for lo, hi in pairs)}
    groups = ({o for o, _, _, first in layout if first} | {length}) & starts
    return [groups, clean, starts] if model.group is not None else [clean, starts]


def requests_for(model: ModelRef) -> list[tuple[int, int]]:
    """(address, count) requests reading the model's data (ID and L excluded): one when
    L <= 125, else split only at point boundaries, preferring cuts that keep values with
    their scale factors, then repeating-group boundaries (model 160: between modules)."""
    length = model.length
    if length <= 0:
        return []
    if length <= MAX_REQUEST:
        return [(model.data_address, length)]
    classes = _cut_classes(model.model_id, length)
    requests: list[tuple[int, int]] = []
    start = 0
    while start < length:
        limit = min(start + MAX_REQUEST, length)
        cut = limit if limit == length else 0
        if not cut:
            for allowed in classes:
                fits = [c for c in allowed if start < c <= limit]
                if fits:
                    cut = max(fits)
                    break
        if not cut:  # a value wider than a request cannot happen with 32-bit points
            cut = limit
        requests.append((model.data_address + start, cut - start))
        start = cut
    return requests


# --- decoding ------------------------------------------------------------------------------


def _raw(point: Point, regs: Sequence[int], base: int) -> Any:
    """The point's value as read, or None for its "not implemented" pattern."""
    at = base + point.offset
    words = [r & 0xFFFF for r in regs[at:at + point.size]]
    if len(words) < point.size or point.size == 0:
        return None
    if point.type == "string":
        data = b"".join(w.to_bytes(2, "big") for w in words)
        if data[0] == 0:
            return None
        return data.split(b"\0", 1)[0].decode("latin-1").strip() or None
    if point.size == 1:
        return _word(point.type, words[0])
    return _double(point.type, (words[0] << 16) | words[1])


def _word(kind: str, word: int) -> int | None:
    if kind in ("int16", "sunssf"):
        return None if word == 0x8000 else word - (0x10000 if word & 0x8000 else 0)
    return None if word == 0xFFFF else word  # uint16, enum16, bitfield16, count


def _double(kind: str, value: int) -> int | float | None:
    if kind == "acc32":  # 0 means "not accumulated"
        return None if value in (0, 0xFFFFFFFF) else value
    if kind == "int32":
        return None if value == 0x80000000 else value - (1 << 32 if value >> 31 else 0)
    if kind == "float32":
        f: float = struct.unpack(">f", struct.pack(">I", value))[0]
        # NaN (0x7FC00000 and the others) is "not implemented"; infinities are never readings.
        # 7 significant digits: what a float32 holds, so 239.2 reads 239.2, not 239.1999969
        return float(f"{f:.7g}") if math.isfinite(f) else None
    return None if value == 0xFFFFFFFF else value  # uint32, bitfield32


def _scale(value: int, sf: int) -> int | float:
    """value x 10^sf; a negative sf divides (correctly rounded) so 2392, -1 gives 239.2."""
    factor: int = 10 ** abs(sf)
    if sf >= 0:
        return value * factor
    return round(value / factor, -sf)


def _decode_points(points: Iterable[Point], regs: Sequence[int], base: int,
                   sfs: dict[str, int | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in points:
        if p.type == "sunssf":
            continue
        value = _raw(p, regs, base)
        if value is None:
            continue
        if p.sf is not None:
            sf = sfs.get(p.sf)
            if sf is None:  # its scale factor is not implemented: the value means nothing
                continue
            value = _scale(value, sf)
        out[p.name] = value
    return out


def _scale_factors(points: Iterable[Point], regs: Sequence[int], base: int,
                   into: dict[str, int | None]) -> None:
    for p in points:
        if p.type == "sunssf":
            sf = _raw(p, regs, base)
            into[p.name] = sf if sf in SF_RANGE else None


def decode_model(model_id: int, regs: Sequence[int]) -> dict[str, Any] | None:
    """A model's data registers (its L registers after ID and L) -> its points by SunSpec
    label, scaled by scale factors from the same registers, "not implemented" values left
    out; model 160's modules as a ``module`` list. None for a model not known here."""
    model = MODELS.get(model_id)
    if model is None:
        return None
    sfs: dict[str, int | None] = {}
    _scale_factors(model.points, regs, 0, sfs)
    out = _decode_points(model.points, regs, 0, sfs)
    group = model.group
    if group is not None:
        items = []
        start = model.length
        while start + group.length <= len(regs):
            local = dict(sfs)
            _scale_factors(group.points, regs, start, local)
            items.append(_decode_points(group.points, regs, start, local))
            start += group.length
        out[group.name] = items
    return out


# --- normalized fields ---------------------------------------------------------------------


def _present(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != []:
        fields[key] = value


def _common(fields: dict[str, Any], common: dict[str, Any]) -> None:
    for key, label in (("manufacturer", "Mn"), ("model", "Md"), ("serial", "SN"),
                       ("firmware", "Vr")):
        _put(fields, key, common.get(label))


def _inverter(models: dict[int, dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    _common(fields, models.get(1, {}))
    inv = next(models[m] for m in sorted(INVERTER_MODELS) if m in models)
    st = inv.get("St")
    if isinstance(st, int) and 1 <= st <= len(STATUSES):
        fields["status"] = STATUSES[st - 1]
    _put(fields, "ac_power_w", inv.get("W"))
    wh = inv.get("WH")
    _put(fields, "ac_energy_wh", None if wh is None else round(wh))
    _put(fields, "ac_voltage_v", _present(inv.get(k) for k in ("PhVphA", "PhVphB", "PhVphC")))
    phases = _present(inv.get(k) for k in ("AphA", "AphB", "AphC"))
    _put(fields, "ac_current_a", phases or _present([inv.get("A")]))
    _put(fields, "ac_frequency_hz", inv.get("Hz"))
    mppt: list[dict[str, Any]] = []
    for module in models.get(160, {}).get("module", []):
        entry = {key: module[label] for key, label in (
            ("dc_voltage_v", "DCV"), ("dc_current_a", "DCA"), ("dc_power_w", "DCW"))
            if label in module}
        if entry:
            mppt.append(entry)
    # Many inverters (the SMA in the fixtures) leave DCW out of 10x and give it per MPPT in
    # model 160: the DC power is then the sum of the modules that report one.
    dc_power = inv.get("DCW")
    module_w = _present(m.get("dc_power_w") for m in mppt)
    _put(fields, "dc_power_w", sum(module_w) if dc_power is None and module_w else dc_power)
    _put(fields, "dc_voltage_v", inv.get("DCV"))
    _put(fields, "dc_current_a", inv.get("DCA"))
    _put(fields, "mppt", mppt)
    temperature = inv.get("TmpCab")
    _put(fields, "temperature_c", inv.get("TmpSnk") if temperature is None else temperature)
    _put(fields, "rated_power_w", models.get(120, {}).get("WRtg"))
    return fields


def _meter(models: dict[int, dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    _common(fields, models.get(1, {}))
    meter = next(models[m] for m in sorted(METER_MODELS) if m in models)
    _put(fields, "power_w", meter.get("W"))
    _put(fields, "power_phase_w", _present(meter.get(k) for k in ("WphA", "WphB", "WphC")))
    for key, label in (("energy_import_wh", "TotWhImp"), ("energy_export_wh", "TotWhExp")):
        wh = meter.get(label)
        _put(fields, key, None if wh is None else round(wh))
    volts = _present(meter.get(k) for k in ("PhVphA", "PhVphB", "PhVphC"))
    _put(fields, "ac_voltage_v", volts or _present([meter.get("PhV")]))
    _put(fields, "ac_frequency_hz", meter.get("Hz"))
    return fields


def _flatten(model_id: int, decoded: dict[str, Any], into: dict[str, Any]) -> None:
    for label, value in decoded.items():
        if isinstance(value, list):
            for i, item in enumerate(value, 1):
                for sub, v in item.items():
                    into[f"{model_id}.{label}.{i}.{sub}"] = v
        else:
            into[f"{model_id}.{label}"] = value


def normalize(models: Sequence[tuple[int, dict[str, Any]]]) -> list[Decoded]:
    """Decoded models in chain order -> one ``Decoded`` per device group. A model 1 starts a
    group; a group with an inverter model (101-103, 111-113) is an inverter, else one with a
    meter model (201-204, 211-214) a meter, else it is dropped. The first model of a kind in
    a group is the one used."""
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    for model_id, decoded in models:
        if model_id == 1 or not groups:
            groups.append([])
        groups[-1].append((model_id, decoded))
    out: list[Decoded] = []
    for group in groups:
        by_id: dict[int, dict[str, Any]] = {}
        raw: dict[str, Any] = {}
        for model_id, decoded in group:
            by_id.setdefault(model_id, decoded)
            _flatten(model_id, decoded, raw)
        if by_id.keys() & INVERTER_MODELS:
            out.append(Decoded("inverter", _inverter(by_id), raw))
        elif by_id.keys() & METER_MODELS:
            out.append(Decoded("meter", _meter(by_id), raw))
    return out
