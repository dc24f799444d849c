"""Training benchmark (by hand): preprocessing-cache build and read rates, and training throughput, peak memory and
the reconstruction error reached, per model, on this machine's CPU cores.

    .venv/bin/python benchmarks/bench_training.py [--spectra 1000] [--epochs 30] [--out /tmp/bench-training]

Simulates (once, reused) a population of FGK dwarfs on a 16,384-channel window (6180.00-6343.83 A: the O2 gamma
band and the Fe I / Ti I lines around it), builds the cache, then trains ae1d (latent 8, deterministic) on the
16,384 window, fc_ae on the same, and PCA; each in its own process so that peak RSS is its own. Reported per model:
spectra/s of training (median epoch), peak RSS, and the test-split reconstruction error as the rms of
(output - input) / sigma over unmasked channels (1.0 = the noise level).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCENARIO = """
name: bench_training
seed: 16384
observing: {{dates: [2005-01-01, 2014-12-31]}}
population:
  n_targets: {targets}
  epochs_per_target: {epochs}
  per_target:
    teff_k: {{uniform: [4800 K, 6300 K]}}
    logg_cgs: {{main_sequence: {{scatter: 0.05 dex}}}}
    mh_dex: {{truncated: {{normal: {{mean: -0.14, sigma: 0.19}}, low: -0.8, high: 0.4}}}}
    rv_kms: galactic_kinematics
    vmag: {{uniform: [6 mag, 9 mag]}}
  per_epoch:
    pwv_mm: {{lognormal: {{median: 3.9 mm, sigma: 0.6}}}}
    exptime_s: 600 s
output: {{window: [6180 A, 6345 A], components: true}}
analysis:
  split: {{by: target, fractions: [0.8, 0.1, 0.1]}}
  preprocessing: {{recipe: window, start_aa: 6180.0, n_pixels: 16384}}
  models:
    - {{name: ae1d8, kind: ae1d, latent_dim: 8, variational: false}}
    - {{name: fcae2, kind: fc_ae, latent_dim: 2}}
    - {{name: pca8, kind: pca, latent_dim: 8}}
  training: {{epochs: {train_epochs}, batch_size: 32, learning_rate: 1.0e-3, threads: 2,
             early_stopping: {{patience: 5}}}}
"""

CHILD = """
import json, resource, sys, time
import numpy as np
from analysis.train import train_model
from analysis.encode import encode_dataset
from simharps.dataset import open_dataset
from simharps.scenario import load_scenario
scenario = load_scenario(sys.argv[1]); out = sys.argv[2]; name = sys.argv[3]
analysis = scenario.analysis_config
dataset = open_dataset(out + "/dataset")
started = time.perf_counter()
train_model(analysis.model(name), analysis, dataset, out + "/models/" + name, out + "/cache", progress=False)
seconds = time.perf_counter() - started
encode_dataset(out + "/models/" + name, dataset, "sim", out + "/cache", n_reconstructions=64)
record = np.load(out + "/models/" + name + "/reconstructions-sim.npz")
m = record["mask"] & (record["sigma"] > 0)
chi = ((record["output"] - record["input"]) / np.where(m, record["sigma"], 1))[m]
history = json.load(open(out + "/models/" + name + "/history.json"))["epochs"]
rates = [e.get("spectra_per_second") for e in history if e.get("spectra_per_second")]
print(json.dumps({"model": name, "train_seconds": seconds, "epochs": len(history),
                  "spectra_per_second_median_epoch": float(np.median(rates)) if rates else None,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "reconstruction_rms_over_noise": float(np.sqrt(np.mean(chi ** 2)))}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spectra", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (early stopping may end sooner)")
    parser.add_argument("--out", default="/tmp/simharps-bench-training")
    parser.add_argument("--models", nargs="*", default=["pca8", "fcae2", "ae1d8"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs_per_target = 10
    scenario = out / "scenario.yaml"
    scenario.write_text(SCENARIO.format(targets=args.spectra // epochs_per_target, epochs=epochs_per_target,
                                        train_epochs=args.epochs))
    from simharps.pipeline import simulate_scenario
    from simharps.scenario import load_scenario

    started = time.perf_counter()
    dataset = simulate_scenario(load_scenario(scenario), out / "dataset", workers=2, progress=False)
    print(f"dataset: {len(dataset)} spectra x {dataset.n_channels} channels ({time.perf_counter() - started:.0f} s)")

    from analysis.cache import build_cache

    analysis = load_scenario(scenario).analysis_config
    cache_root = out / "cache-bench"
    started = time.perf_counter()
    cache = build_cache(dataset, analysis.preprocessing, cache_root)
    build = time.perf_counter() - started
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, len(cache), 256):
        cache.prepared(np.arange(start, min(start + 256, len(cache))))
    sequential = len(cache) / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(20):
        cache.prepared(rng.choice(len(cache), 32, replace=False))
    shuffled = 640 / (time.perf_counter() - started)
    print(f"cache: built {len(cache)} spectra in {build:.1f} s ({len(cache) / build:.0f} spectra/s; "
          f"{sum(f.stat().st_size for f in cache.path.iterdir()) / 1e6:.0f} MB); prepared batches read at "
          f"{sequential:.0f} spectra/s sequential, {shuffled:.0f} spectra/s shuffled (batches of 32)")
    print(f"parent peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for name in args.models:
        result = subprocess.run([sys.executable, "-c", CHILD, str(scenario), str(out), name], capture_output=True,
                                text=True, check=True)
        print(json.loads(result.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
