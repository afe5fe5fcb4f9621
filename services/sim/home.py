"""The simulated home of `make run`: one day shared by the Linky and the Victron simulators.

Pure: a LoadProfile (time in, power out) with a house load that leaves room for solar
routing at midday, a 9 kWc PV curve with a few passing clouds, and the steered loads added by
the caller (services.sim.follow). The day starts in the late morning so the water heater
finds a surplus within the first minutes of `make run`.
"""

from __future__ import annotations

from services.sim.profile import Cloud, LoadProfile, Peak

HOME_PV_KWC = 9.0  # enough for the heater even while the living zone is on confort (1.5 kW)
HOME_START_HOUR = 11.5  # the simulated clock at start: export covers a 3 kW water heater
HOME_DAY_LENGTH_S = 1200.0  # a simulated day in 20 minutes: one hour every 50 s
# AC power at the clear-sky peak per kWc (inverter and cabling losses, warm panels).
_AC_PER_KWC_VA = 900.0
# Two clouds in the afternoon, deep enough for the meter to show import while they pass;
# after the water heater's and the pool pump's switch-ons (about 12:50 and 14:10), clear
# of the stack's peak (15:06-15:30).
HOME_CLOUDS = (Cloud(14.5, 14.65, 0.6), Cloud(16.0, 16.5, 0.7))


def home_profile(
    *,
    phases: int = 1,
    subscribed_kva: float = 9.0,
    pv_kwc: float = HOME_PV_KWC,
    day_length_s: float = HOME_DAY_LENGTH_S,
    start_hour: float = HOME_START_HOUR,
    peak: Peak | None = None,
    seed: int = 1,
) -> LoadProfile:
    """The home: ~400 W at night, a light lunch, morning and evening peaks, PV of ``pv_kwc``.

    ``peak=None`` gives no daily spike (the stack asks for one on the command line).
    """
    if phases not in (1, 3):
        raise ValueError(f"phases must be 1 or 3, not {phases}")
    if pv_kwc < 0:
        raise ValueError(f"pv_kwc must be >= 0, not {pv_kwc}")
    subscribed_va = subscribed_kva * 1000.0
    return LoadProfile(
        subscribed_va=subscribed_va,
        phase_split=(1.0,) if phases == 1 else (0.26, 0.49, 0.25),
        day_length_s=day_length_s,
        start_hour=start_hour,
        standby_va=150.0,
        daily_va=subscribed_va * 0.55,  # evening peak ~5 kVA on 9 kVA, as default_profile
        noise_va=subscribed_va / 225.0,
        pv_peak_va=pv_kwc * _AC_PER_KWC_VA,
        peak=Peak(duration_s=0.0) if peak is None else peak,
        seed=seed,
        # Lunch is light (a weekday): the midday export is what the routed loads share.
        lunch=0.1,
        clouds=HOME_CLOUDS,
    )
