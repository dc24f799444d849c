"""Time scenario loading and population sampling (10,000 rows by default).

Run: .venv/bin/python benchmarks/bench_scenario.py [N_TARGETS] [EPOCHS]
"""

import sys
import textwrap
import time

from simharps.scenario import Scenario, sample_population


def main(n_targets=5000, epochs=2):
    text = textwrap.dedent(f"""\
        name: bench
        seed: 1
        population:
          n_targets: {n_targets}
          epochs_per_target: {epochs}
        """)
    start = time.perf_counter()
    scenario = Scenario.from_yaml(text)
    loaded = time.perf_counter()
    sample_population(scenario)  # first call pays the IERS / ephemeris set-up
    first = time.perf_counter()
    table = sample_population(scenario)
    second = time.perf_counter()
    print(f"load {loaded - start:.2f} s; sample {len(table)} rows: first call {first - loaded:.2f} s, "
          f"second {second - first:.2f} s")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
