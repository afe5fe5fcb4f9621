"""Indicator lamps: each lit while its condition (the automation's grammar) holds.

Pure: evaluated from the same Snapshot the automation's conditions read (BoxTracker.snapshot),
so LinkyMonitor's EJP lamp is ``{gpio: 17, when: {ejp: notice}}`` and lights during the meter's
notice (teleinfo's ``ejp_notice``, PM.. on an EJP meter), never inverted: the level is the
output driver's business (``active_high``), not the condition's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.automation.conditions import HoldState, Snapshot, Truth, evaluate
from services.display.config import IndicatorConfig


@dataclass
class Indicators:
    """The lamps' states, with the ``for_s`` runs their conditions keep."""

    configs: Sequence[IndicatorConfig]
    hold: HoldState = field(default_factory=HoldState)

    def evaluate(self, snap: Snapshot) -> Mapping[str, bool]:
        """Indicator name -> lit; a stale condition gives the indicator's ``when_stale``."""
        lit: dict[str, bool] = {}
        for ind in self.configs:
            outcome, self.hold = evaluate(ind.when, snap, self.hold, ind.name)
            if outcome.truth is Truth.STALE:
                lit[ind.name] = ind.when_stale == "on"
            else:
                lit[ind.name] = outcome.holds
        return lit


def level(ind: IndicatorConfig, lit: bool) -> bool:
    """The GPIO level that shows ``lit`` (an active-low LED is lit by a low level)."""
    return lit == ind.active_high
