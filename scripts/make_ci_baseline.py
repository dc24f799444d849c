"""Rebuild reports/baselines/ci_regression.json from the spread of the CI regression metrics over training seeds.

    .venv/bin/python scripts/make_ci_baseline.py [--seeds 5] [--out runs/ci_baseline]

Runs scenarios/ci_regression.yaml once as written (training seed 0, the run `make test` repeats), then again with
training seeds 1..N-1 on the same simulated dataset, and writes the baseline with `simharps regress --update`: per
metric the mean over seeds and an absolute tolerance of max(4 x the standard deviation over seeds, the scenario's
configured tolerance). Training is deterministic on one machine, so this spread is what a code change must stay
within; it is not an uncertainty of the metric itself (those are the metrics' intervals).
"""

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "ci_regression.yaml"
BASELINE = ROOT / "reports" / "baselines" / "ci_regression.json"


def simharps(*args):
    subprocess.run([sys.executable, "-m", "simharps.cli", *map(str, args)], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "runs" / "ci_baseline"))
    args = parser.parse_args()
    out = Path(args.out)
    first = out / "seed0"
    simharps("run", SCENARIO, "--out", first, "--quiet")
    metrics = [first / "metrics"]
    data = yaml.safe_load(SCENARIO.read_text())
    for seed in range(1, args.seeds):
        variant = dict(data)
        variant["analysis"] = {**data["analysis"], "training": {**data["analysis"]["training"], "seed": seed},
                               "datasets": [{"name": "sim", "path": str((first / "datasets" / "sim").resolve())}]}
        variant["regression"] = {}
        path = out / f"ci_regression_seed{seed}.yaml"
        path.write_text(yaml.safe_dump(variant, sort_keys=False))
        simharps("run", path, "--out", out / f"seed{seed}", "--quiet")
        metrics.append(out / f"seed{seed}" / "metrics")
    BASELINE.parent.mkdir(parents=True, exist_ok=True)
    simharps("regress", *metrics, "--baseline", BASELINE, "--update", "--tolerances", SCENARIO)
    print(BASELINE)


if __name__ == "__main__":
    main()
