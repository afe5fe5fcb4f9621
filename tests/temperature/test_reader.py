"""The reader on a fake sysfs tree in the kernel's formats: faults, probes plugged in and
out, bulk read present and absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.sim.onewire import FAULTS, MASTER, FakeW1Tree, Fault
from services.temperature.reader import BusReader
from services.temperature.w1 import list_probes, parse_w1_slave, read_probe

A, B, C, D = "28-000000000a01", "28-000000000a02", "28-000000000a03", "28-000000000a04"


def tree_of(tmp_path: Path, *, bulk: bool = True, n: int = 2) -> FakeW1Tree:
    tree = FakeW1Tree(tmp_path / "w1", bulk=bulk)
    for i, address in enumerate((A, B, C, D)[:n]):
        tree.add(address, 20.0 + i)
    tree.write()
    return tree


def values(reader: BusReader) -> dict[str, float | None]:
    return {o.address: o.value_c for o in reader.cycle()}


def test_probes_are_listed_ghosts_and_other_chips_ignored(tmp_path: Path) -> None:
    tree = tree_of(tmp_path)
    (tree.root / "3a-000000000001").mkdir()  # a DS2413 switch: not a thermometer
    probes = list_probes(tree.root)
    assert [p.address for p in probes] == [A, B]  # not 00-400000000000, not the master
    assert probes[0].master == (tree.root / MASTER).resolve() and probes[0].model == "DS18B20"
    assert read_probe(probes[0]).milli_c == 20000
    assert list_probes(tmp_path / "absent") == []


def test_w1_slave_garbage_is_a_read_error(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, n=1)
    (tree.master / A / "w1_slave").write_text("72 01 4b 46 7f ff 0c 10 c6 : crc=c6 YES\n")
    reader = BusReader(tree.root, 10)
    reader.rescan()
    [outcome] = reader.cycle()
    assert outcome.value_c is None and outcome.verdict is None and not outcome.gone
    counters = reader.filter(A).counters
    assert (counters.read_errors, counters.retries, counters.reads) == (2, 1, 2)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_on_one_probe_never_hides_the_other(tmp_path: Path, fault: Fault) -> None:
    tree = tree_of(tmp_path)
    reader = BusReader(tree.root, 10)
    reader.rescan()
    assert values(reader) == {A: 20.0, B: 21.0}
    tree.set(A, 20.0, fault)
    assert values(reader) == {A: None, B: 21.0}
    counters = reader.filter(A).counters
    name = {"crc": "crc_errors", "reset": "reset_values", "zero": "zero_reads",
            "timing_high": "out_of_range", "timing_low": "out_of_range",
            "brownout": "step_rejects"}[fault]
    # A fault is retried once at once; a held jump waits for the next cycle.
    retried = fault != "brownout"
    assert getattr(counters, name) == (2 if retried else 1)
    assert counters.retries == (1 if retried else 0)
    tree.set(A, 20.5)
    assert values(reader) == {A: 20.5, B: 21.0}
    assert reader.filter(B).counters.reads == 3  # B read once a cycle, untouched


def test_a_probe_unplugged_is_gone_and_found_again_at_the_next_rescan(tmp_path: Path) -> None:
    tree = tree_of(tmp_path)
    reader = BusReader(tree.root, 10)
    assert reader.rescan() == ([A, B], [])
    tree.remove(B)
    outcomes = {o.address: o for o in reader.cycle()}
    assert outcomes[B].gone and outcomes[A].value_c == 20.0
    assert list(reader.probes) == [A]  # not read again until it is back
    assert values(reader) == {A: 20.0}
    tree.add(B, 30.0)
    tree.add(C, 40.0)
    tree.write()
    assert reader.rescan() == ([B, C], [])
    assert values(reader) == {A: 20.0, B: 30.0, C: 40.0}
    tree.remove(C)
    assert reader.rescan() == ([], [C])


def test_bulk_read_triggers_one_conversion_per_bus(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, n=4)
    reader = BusReader(tree.root, 10)
    reader.rescan()
    assert reader.bulk_masters() == [tree.master.resolve()]
    assert values(reader) == {A: 20.0, B: 21.0, C: 22.0, D: 23.0}
    assert tree.bulk_triggered() and reader.bulk_triggers == 1


def test_without_bulk_read_each_probe_converts_on_its_own(tmp_path: Path) -> None:
    tree = tree_of(tmp_path, bulk=False, n=4)
    reader = BusReader(tree.root, 10)
    reader.rescan()
    assert reader.bulk_masters() == []
    assert values(reader) == {A: 20.0, B: 21.0, C: 22.0, D: 23.0}
    assert reader.bulk_triggers == 0 and not (tree.master / "therm_bulk_read").exists()
    tree.set_bulk(True)  # a kernel upgrade: used from the next cycle
    values(reader)
    assert reader.bulk_triggers == 1


def test_a_bulk_trigger_that_fails_falls_back_to_one_conversion_per_probe(
    tmp_path: Path,
) -> None:
    tree = tree_of(tmp_path)
    # The write fails (EISDIR here, even for root), as EROFS does with /sys/bus/w1 mounted
    # read-only in a container.
    (tree.master / "therm_bulk_read").unlink()
    (tree.master / "therm_bulk_read").mkdir()
    reader = BusReader(tree.root, 10)
    reader.rescan()
    assert values(reader) == {A: 20.0, B: 21.0}
    assert reader.no_bulk == {tree.master.resolve()} and reader.bulk_masters() == []


def test_parse_w1_slave_reads_the_scratchpad_and_the_verdict() -> None:
    read = parse_w1_slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                          "72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    assert read.crc_ok and read.milli_c == 23125 and read.scratchpad[:2] == b"\x72\x01"
    assert parse_w1_slave("ff ff ff ff ff ff ff ff ff : crc=c9 NO\n"
                          "ff ff ff ff ff ff ff ff ff t=-62\n").crc_ok is False
