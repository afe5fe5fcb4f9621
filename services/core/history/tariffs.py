"""Electricity prices, each valid from a date until the next one: a change never rewrites
the past. Prices are keyed by the meter's index names (``energy_import_by_index_wh``)."""

from __future__ import annotations

import bisect
from datetime import date
from typing import Annotated

from pydantic import Field, field_validator

from services.core.config import Section

TEMPO_INDEXES = tuple(f"{c}_{p}" for c in ("blue", "white", "red") for p in ("hc", "hp"))
INDEX_NAMES = frozenset(
    ("base", "hc", "hp", "ejp_normal", "ejp_peak", *TEMPO_INDEXES,
     *(f"easf{i:02d}" for i in range(1, 11)))
)
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Tariff(Section):
    """Prices from ``valid_from`` (a local day) until the next tariff's date."""

    valid_from: date = Field(description="First local day these prices apply to.")
    subscription_eur_per_day: Price = Field(0, description="Fixed part, € per day.")
    prices_eur_per_kwh: dict[str, Price] = Field(
        description="€ per kWh by index name: base, hc, hp, ejp_normal, ejp_peak, blue_hc … "
        "red_hp, or easf01 … easf10 for a supplier calendar enerbox does not know.",
    )
    export_eur_per_kwh: Price = Field(0, description="€ per kWh fed into the grid.")

    @field_validator("prices_eur_per_kwh")
    @classmethod
    def _known_indexes(cls, prices: dict[str, float]) -> dict[str, float]:
        # A misspelt index ("hpp") would silently leave that energy unpriced.
        unknown = sorted(set(prices) - INDEX_NAMES)
        if unknown:
            raise ValueError(f"unknown index {', '.join(unknown)}; expected some of "
                             f"{', '.join(sorted(INDEX_NAMES))}")
        return prices


def sorted_tariffs(tariffs: list[Tariff]) -> list[Tariff]:
    """Tariffs by date; two with the same ``valid_from`` are an error naming both."""
    seen: dict[date, int] = {}
    for i, tariff in enumerate(tariffs):
        if tariff.valid_from in seen:
            raise ValueError(f"tariffs[{i}].valid_from {tariff.valid_from} is already the date "
                             f"of tariffs[{seen[tariff.valid_from]}]")
        seen[tariff.valid_from] = i
    return sorted(tariffs, key=lambda t: t.valid_from)


class TariffBook(Section):
    """Every tariff, by date: the prices of a day are those of the latest ``valid_from``."""

    tariffs: list[Tariff] = Field(default_factory=list, description="Tariffs, any order.")

    @field_validator("tariffs")
    @classmethod
    def _by_date(cls, tariffs: list[Tariff]) -> list[Tariff]:
        return sorted_tariffs(tariffs)

    def for_day(self, day: date) -> Tariff | None:
        """The tariff of a local day; None before the first one."""
        i = bisect.bisect_right(self.tariffs, day, key=lambda t: t.valid_from)
        return self.tariffs[i - 1] if i else None

    def price(self, day: date, index: str) -> float | None:
        """€/kWh of an index on a day; None when no tariff or no price for that index."""
        tariff = self.for_day(day)
        return None if tariff is None else tariff.prices_eur_per_kwh.get(index)
