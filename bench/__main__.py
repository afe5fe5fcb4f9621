"""`python -m bench`: run every benchmark and print its figures."""

from bench import (
    bench_api,
    bench_api_body,
    bench_automation,
    bench_display,
    bench_historian,
    bench_inverter,
    bench_make_run,
    bench_page,
    bench_pulses,
    bench_replay,
    bench_shedding,
    bench_teleinfo,
    bench_temperature,
    bench_vedirect,
    rss,
)

bench_teleinfo.main()
bench_vedirect.main()
rss.main()
bench_shedding.main()
bench_historian.main()
bench_api.main()
bench_api_body.main()
bench_automation.main()
bench_inverter.main()
bench_display.main()
bench_temperature.main()
bench_pulses.main()
bench_replay.main()
bench_make_run.main()
bench_page.main()
