"""skiplab benchmarks: `make bench` runs every `bench/bench_*.py` and writes bench/results.json.

Each module defines `run() -> dict` returning its measurements. Goals are
stated as ratios against a baseline measured in the same run, never as
absolute times asserted in unit tests.
"""
