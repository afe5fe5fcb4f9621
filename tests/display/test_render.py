"""Golden frames per page through luma's dummy device, stale and offline rendering.

Regenerate the PNGs deliberately: ENERBOX_REGOLDEN=1 .venv/bin/pytest tests/display/test_render.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from luma.core.device import dummy
from PIL import Image, ImageChops

from services.display.model import BoxView
from services.display.pages import Light, Screen
from services.display.render import Lang, lines, render, show
from tests.display.views import T0, box, feed, fresh

GOLDEN = Path(__file__).parent / "golden"
REGOLDEN = os.environ.get("ENERBOX_REGOLDEN") == "1"
PAGES = ("grid", "solar", "battery", "tariff", "relays", "alerts")


def frame(view: BoxView, page: str, size: tuple[int, int], lang: Lang = "fr",
          light: Light = Light.AWAKE) -> Image.Image:
    """The frame as the dummy device holds it after ``show``."""
    device = dummy(width=size[0], height=size[1], mode="1")
    show(device, render(view, Screen(page, light), size, lang), light)
    assert device.image is not None
    image: Image.Image = device.image
    return image


def check_golden(image: Image.Image, name: str) -> None:
    """Pixels equal to tests/display/golden/<name>.png (written when ENERBOX_REGOLDEN=1)."""
    path = GOLDEN / f"{name}.png"
    if REGOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        image.save(path)
    assert path.exists(), f"{path} missing: run with ENERBOX_REGOLDEN=1 once"
    golden = Image.open(path).convert("1")
    assert golden.size == image.size
    diff = ImageChops.difference(golden.convert("L"), image.convert("L")).getbbox()
    assert diff is None, f"{name}: pixels differ in {diff}"


@pytest.mark.parametrize("size", [(128, 64), (128, 32)], ids=["128x64", "128x32"])
@pytest.mark.parametrize("page", PAGES)
def test_golden_pages(page: str, size: tuple[int, int]) -> None:
    view = box(overload=True).view(T0 + 2) if page == "alerts" else fresh()
    check_golden(frame(view, page, size), f"{page}-{size[0]}x{size[1]}")


def test_golden_english() -> None:
    check_golden(frame(fresh(), "tariff", (128, 64), "en"), "tariff-128x64-en")


def stale_view() -> BoxView:
    """The meter's last state is 61 s old (stale_after_s 60), the battery monitor offline."""
    t = box()
    feed(t, "enerbox/vedirect/shunt/availability", b"offline")
    return t.view(60 + 61 + 1_795_000_000.0 - 60)


def test_stale_shows_dashes_and_the_offline_mark_never_the_old_number() -> None:
    view = stale_view()
    grid = lines(view, "grid")
    assert grid[0].endswith("×") and "----" in grid[1] and "1 630" not in grid[1]
    battery = lines(view, "battery")
    assert battery[0].endswith("×") and "85" not in battery[1] and "----" in battery[1]
    assert lines(view, "tariff")[1].endswith("----")
    check_golden(frame(view, "grid", (128, 64)), "grid-stale-128x64")


def test_offline_device_is_stale_at_once_then_fresh_again() -> None:
    t = box()
    feed(t, "enerbox/teleinfo/linky/availability", b"offline")
    assert "----" in lines(t.view(T0 + 2), "grid")[1]
    assert any(a.kind == "offline" for a in t.view(T0 + 2).alerts)
    feed(t, "enerbox/teleinfo/linky/availability", b"online")
    assert lines(t.view(T0 + 2), "grid")[1] == "Achat 1 630 VA"


def test_export_and_ejp_lines() -> None:
    t = box(tariff_period="ejp_normal", ejp_notice=True)
    feed(t, "enerbox/teleinfo/linky/state", {"net_power_va": -5500, "apparent_power_va": 0,
                                             "tariff_period": "ejp_normal",
                                             "ejp_notice": True})
    view = t.view(T0 + 1)
    assert lines(view, "grid")[1] == "Vente 5 500 VA"
    assert lines(view, "tariff") == ["Tarif", "Période EJP normal", "EJP préavis"]
    assert lines(view, "tariff", "en")[2] == "EJP notice"


def test_blank_is_black_and_dim_keeps_the_picture() -> None:
    assert frame(fresh(), "grid", (128, 64), light=Light.BLANK).getbbox() is None
    dim = frame(fresh(), "grid", (128, 64), light=Light.DIM)
    assert dim.tobytes() == frame(fresh(), "grid", (128, 64)).tobytes()
