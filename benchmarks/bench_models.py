"""Training throughput and peak memory of the analysis models on CPU (2 threads).

Run by hand: ``.venv/bin/python benchmarks/bench_models.py [--steps N]``. For each case, in a fresh process so
that peak memory (``resource.getrusage`` maxrss) is its own: build the model (seed 0), run one warm-up step,
then time N optimisation steps (forward, masked MSE + KL for the VAEs, backward, Adam) on random spectra and
report spectra per second (wall clock), CPU seconds per spectrum (all threads; less sensitive to other load on
the cores than the wall clock), and peak resident memory (after imports, and at the end).

Cases: fc_ae at 11,000 channels (the HITS recipe), ae1d on 16,384 and 4,096 px windows, and ae1d at the full
327,680 px (throughput and memory only). Timings depend on what else runs on the machine's cores.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

CASES = {
    "fc_ae 11000": ("fc_ae", 11000, {}, 32),
    "ae1d 16384": ("ae1d", 16384, {}, 32),
    "ae1d 4096": ("ae1d", 4096, {}, 32),
    "ae1d 327680": ("ae1d", 327680, {}, 4),
}


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name, steps, threads=2):
    """Train one case for ``steps`` timed steps; returns a dict of its figures."""
    import torch

    from analysis.models import build_model, count_parameters, kl_divergence, masked_mse

    torch.set_num_threads(threads)
    kind, n_channels, options, batch = CASES[name]
    base_mib = _peak_mib()
    torch.manual_seed(0)
    model = build_model(kind, n_channels, **options)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = 1 + 0.1 * torch.randn(batch, n_channels)
    mask = torch.ones_like(x, dtype=torch.bool)

    def step():
        out = model(x)
        total, count = masked_mse(out.reconstruction, x, mask)
        loss = total / count
        if out.logvar is not None:
            loss = loss + 0.3 * kl_divergence(out.mean, out.logvar)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    cpu_seconds = (time.process_time() - cpu_start) / steps
    return {"case": name, "parameters": count_parameters(model), "batch": batch, "threads": threads,
            "s_per_step": round(seconds, 3), "spectra_per_s": round(batch / seconds, 1),
            "cpu_ms_per_spectrum": round(1000 * cpu_seconds / batch, 1),
            "peak_mib_after_imports": round(base_mib), "peak_mib": round(_peak_mib())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case")
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)   # child process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.steps)))
        return
    print(f"{'case':<14}{'params':>11}{'batch':>7}{'s/step':>9}{'spectra/s':>11}{'CPU ms/sp':>11}{'peak MiB':>10}{'(imports)':>11}")
    for name in CASES:
        child = subprocess.run([sys.executable, __file__, "--case", name, "--steps", str(args.steps)],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name:<14}{r['parameters']:>11,}{r['batch']:>7}{r['s_per_step']:>9}{r['spectra_per_s']:>11}{r['cpu_ms_per_spectrum']:>11}"
              f"{r['peak_mib']:>10}{r['peak_mib_after_imports']:>11}", flush=True)


if __name__ == "__main__":
    main()
