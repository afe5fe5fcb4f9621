"""Pages drawn with Pillow in Pillow's built-in bitmap font (6×11 px, Latin-1), for 128×64
and 128×32 monochrome OLEDs; a luma device shows the frame (`show`).

`lines(view, page, lang)` is the text of a page (testable without pixels); `render` draws it.
A stale value is ``----`` and the title gets the offline mark ``×``: never an old number.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from services.display.model import Alert, BoxView, Reading, RelayLine, Text
from services.display.pages import ALERTS, Light, Screen

Lang = Literal["fr", "en"]
STALE = "----"
OFFLINE_MARK = "×"  # in Latin-1, so the bitmap font has it
PITCH = 10  # line pitch (px): 6 lines on 64 px, 3 on 32
COLUMNS = 21  # 128 px / 6 px

LABELS: dict[str, dict[Lang, str]] = {
    "grid": {"fr": "Réseau", "en": "Grid"},
    "import": {"fr": "Achat", "en": "Import"},
    "export": {"fr": "Vente", "en": "Export"},
    "solar": {"fr": "Solaire", "en": "Solar"},
    "power": {"fr": "Prod.", "en": "Power"},
    "today": {"fr": "Auj.", "en": "Today"},
    "battery": {"fr": "Batterie", "en": "Battery"},
    "soc": {"fr": "Charge", "en": "Charge"},
    "state": {"fr": "État", "en": "State"},
    "tariff": {"fr": "Tarif", "en": "Tariff"},
    "period": {"fr": "Période", "en": "Period"},
    "tempo": {"fr": "Tempo", "en": "Tempo"},
    "tempo_today": {"fr": "Tempo auj.", "en": "Tempo today"},
    "tempo_tomorrow": {"fr": "Tempo dem.", "en": "Tempo tmrw"},
    "ejp": {"fr": "EJP", "en": "EJP"},
    "relays": {"fr": "Relais", "en": "Relays"},
    "alerts": {"fr": "Alertes", "en": "Alerts"},
    "none": {"fr": "aucune", "en": "none"},
    "overload": {"fr": "Surcharge", "en": "Overload"},
    "shed": {"fr": "Délesté", "en": "Shed"},
    "offline": {"fr": "Hors ligne", "en": "Offline"},
    "blue": {"fr": "bleu", "en": "blue"},
    "white": {"fr": "blanc", "en": "white"},
    "red": {"fr": "rouge", "en": "red"},
    "unknown": {"fr": "?", "en": "?"},
    "notice": {"fr": "préavis", "en": "notice"},
    "peak": {"fr": "pointe", "en": "peak"},
    "on": {"fr": "ON", "en": "ON"},
    "off": {"fr": "off", "en": "off"},
    "auto": {"fr": "auto", "en": "auto"},
    "forced": {"fr": "forcé", "en": "forced"},
}


def label(key: str, lang: Lang) -> str:
    """A label in ``lang``; an unknown key is shown as itself."""
    return LABELS.get(key, {}).get(lang, key)


def number(value: float, decimals: int, lang: Lang) -> str:
    """French "1 630" / "12,3", English "1,630" / "12.3"."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",") if lang == "fr" else text


def _reading(r: Reading, unit: str, decimals: int, lang: Lang) -> str:
    return STALE if not r.shown or r.value is None else f"{number(r.value, decimals, lang)} {unit}"


def _text(t: Text, lang: Lang) -> str:
    return STALE if t.stale or t.value is None else label(t.value, lang)


def _grid(v: BoxView, lang: Lang) -> tuple[list[str], bool]:
    g = v.grid_va
    if not g.shown or g.value is None:
        return [f"{label('import', lang)} {STALE}"], True
    key = "import" if g.value >= 0 else "export"
    return [f"{label(key, lang)} {number(abs(g.value), 0, lang)} VA"], False


def _solar(v: BoxView, lang: Lang) -> tuple[list[str], bool]:
    today = _reading(v.pv_today_kwh, "kWh", 1, lang)
    if v.pv_today_partial and today != STALE:
        today = ">" + today  # the inverter's morning was not seen: a floor
    return ([f"{label('power', lang)} {_reading(v.pv_w, 'W', 0, lang)}",
             f"{label('today', lang)} {today}"],
            not (v.pv_w.shown and v.pv_today_kwh.shown))


def _battery(v: BoxView, lang: Lang) -> tuple[list[str], bool]:
    return ([f"{label('soc', lang)} {_reading(v.soc_pct, '%', 0, lang)}",
             f"{label('state', lang)} {_text(v.charge_state, lang)}"],
            not v.soc_pct.shown or v.charge_state.stale)


def _period(t: Text, lang: Lang) -> str:
    """The meter's period in words: blue_hp -> "bleu HP", ejp_peak -> "EJP pointe"."""
    if t.stale or t.value is None:
        return STALE
    return " ".join(part.upper() if part in ("hc", "hp", "ejp") else label(part, lang)
                    for part in t.value.split("_"))


def _tariff(v: BoxView, lang: Lang) -> tuple[list[str], bool]:
    t = v.tariff
    if t is None or t.stale:
        return [f"{label('period', lang)} {STALE}"], True
    lines = [f"{label('period', lang)} {_period(v.tariff_period, lang)}"]
    if t.tempo_today != "unknown" or t.tempo_tomorrow != "unknown":
        lines += [f"{label('tempo_today', lang)} {label(t.tempo_today, lang)}",
                  f"{label('tempo_tomorrow', lang)} {label(t.tempo_tomorrow, lang)}"]
    if t.ejp != "none":
        lines.append(f"{label('ejp', lang)} {label(t.ejp, lang)}")
    return lines, False


def _relay(r: RelayLine, lang: Lang) -> str:
    if r.stale or r.output is None:
        return f"{r.id[:12]} {STALE}"
    mode = label("auto", lang) if r.mode in (None, "auto") else label("forced", lang)
    return f"{r.id[:12]} {label(r.output, lang)} {mode}"


def _relays(v: BoxView, lang: Lang, rows: int) -> tuple[list[str], bool]:
    lines: list[str] = []
    with_reasons = 2 * len(v.relays) <= rows  # room for each relay's reason under it
    for r in v.relays:
        lines.append(_relay(r, lang))
        if with_reasons and r.reason and not r.stale:
            lines.append(" " + r.reason)
    return lines, any(r.stale for r in v.relays)


def _alert(a: Alert, lang: Lang) -> str:
    return f"{label(a.kind, lang)} {a.subject}"


def _alerts(v: BoxView, lang: Lang) -> tuple[list[str], bool]:
    return ([_alert(a, lang) for a in v.alerts] or [label("none", lang)]), False


_PAGES: dict[str, Callable[[BoxView, Lang], tuple[list[str], bool]]] = {
    "grid": _grid, "solar": _solar, "battery": _battery, "tariff": _tariff, ALERTS: _alerts,
}


def lines(view: BoxView, page: str, lang: Lang = "fr", rows: int = 6) -> list[str]:
    """A page's text: its title (with ``×`` when a value is stale) then at most rows-1 lines."""
    if page == "relays":
        body, stale = _relays(view, lang, rows - 1)
    else:
        body, stale = _PAGES[page](view, lang)
    title = label(page, lang)
    if stale:
        title = f"{title:<{COLUMNS - 1}}{OFFLINE_MARK}"
    return [title, *body][:rows]


@cache
def font() -> ImageFont.ImageFont:
    """Pillow's built-in bitmap font: no font file to ship, the same pixels everywhere."""
    return ImageFont.load_default_imagefont()


def _latin1(text: str) -> str:
    """What the bitmap font can draw: anything outside Latin-1 becomes "?"."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render(view: BoxView, screen: Screen, size: tuple[int, int], lang: Lang = "fr"
           ) -> Image.Image:
    """A 1-bit frame of ``size``; blank is all black (OLED burn-in), the title underlined."""
    width, height = size
    image = Image.new("1", size, 0)
    if screen.light is Light.BLANK:
        return image
    draw = ImageDraw.Draw(image)
    rows = height // PITCH
    for i, text in enumerate(lines(view, screen.page, lang, rows)):
        # The title from row 0 keeps its accents (É); the body one row below the rule.
        draw.text((0, i * PITCH + (i > 0)), _latin1(text)[:COLUMNS], font=font(), fill=1)
    draw.line((0, PITCH, width - 1, PITCH), fill=1)
    return image


def show(device: Any, image: Image.Image, light: Light, contrast: int = 255,
         dim_contrast: int = 16) -> None:
    """Hand a frame to a luma device (oled or dummy), at the contrast of ``light``."""
    device.contrast(dim_contrast if light is Light.DIM else contrast)
    device.display(image.convert(device.mode))
