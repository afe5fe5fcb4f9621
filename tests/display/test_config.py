"""The display section: defaults, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from services.display.config import DisplaySection


def load(text: str) -> DisplaySection:
    data: Any = yaml.safe_load(text)
    return DisplaySection.model_validate(data)


def test_defaults_and_hex_address() -> None:
    s = load("displays: [{id: hall, i2c_address: 0x3D, size: 128x32}, "
             "{id: porch, i2c_address: '0x3c'}]")
    assert s.displays[0].i2c_address == 0x3D and s.displays[0].width_height == (128, 32)
    assert s.displays[1].i2c_address == 0x3C and s.displays[1].backend == "dummy"
    assert s.displays[1].pages == ("grid", "solar", "battery", "tariff", "relays")


@pytest.mark.parametrize(("text", "where", "says"), [
    ("displays: [{id: a, i2c_address: 0x3E}]", "i2c_address", "0x3C or 0x3D"),
    ("displays: [{id: a, size: 64x48}]", "size", "128x64"),
    ("displays: [{id: a, dim_after_s: 60, blank_after_s: 30}]", "displays.0",
     "blank_after_s (30.0) must be above"),
    ("displays: [{id: a, pages: [grid, grid]}]", "pages", "listed twice"),
    ("displays: [{id: a, pages: [alerts]}]", "pages", "grid"),
    ("displays: [{id: a, colour: red}]", "colour", "Extra inputs"),
    ("displays: [{id: A b}]", "id", "slug"),
    ("indicators: [{gpio: 4, tm1638_led: 1, when: {ejp: notice}}]", "indicators.0",
     "one of gpio"),
    ("indicators: [{gpio: 4, when: {ejp: tomorrow}}]", "ejp", "notice"),
    ("indicators: [{gpio: 4, when: {signal: soc, below: 20}}]", "",
     "not under display.signals"),
    ("indicators: [{gpio: 4, when: {ejp: notice}}, {gpio: 4, when: {ejp: peak}}]", "",
     "id given twice: gpio4"),
])
def test_errors_name_the_key(text: str, where: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(text)
    report = str(caught.value)
    assert where in report and says in report, report
