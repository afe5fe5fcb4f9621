"""`python -m bench`: run every benchmark and print its figures."""

from bench import bench_teleinfo

bench_teleinfo.main()
