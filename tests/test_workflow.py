"""`simharps run` end to end on a tiny scenario: every stage, skipping what is done, retraining only a changed model,
`simharps evaluate`, and `simharps regress` catching a planted drift (shuffled latents)."""

import json
import textwrap

import numpy as np
import pytest

from simharps.cli import main

SCENARIO = textwrap.dedent("""\
    name: tiny_run
    seed: 7
    observing: {dates: [2008-01-01, 2012-12-31]}
    population:
      n_targets: 6
      epochs_per_target: 3
      per_target:
        teff_k: {uniform: [4800 K, 6300 K]}
        vmag: {uniform: [6 mag, 8 mag]}
        rv_kms: {uniform: [-30 km/s, 30 km/s]}
      per_epoch:
        exptime_s: 300 s
    output: {window: [6270 A, 6300 A], components: true}
    analysis:
      split: {by: target, fractions: [0.5, 0.25, 0.25]}
      preprocessing: {recipe: window, start_aa: 6275.0, n_pixels: 2048}
      models:
        - {name: pca2, kind: pca, latent_dim: 2}
        - {name: fc, kind: fc_ae, latent_dim: 2, training: {epochs: EPOCHS}}
      training: {epochs: 2, batch_size: 8, learning_rate: 1.0e-3, threads: 1}
      metrics: {n_subsamples: 3, n_permutations: 3}
    regression:
      tolerances: {default: {rel: 0.05}, repeat.ratio_median: {abs: 0.1}}
    """)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("workflow")
    scenario = base / "tiny.yaml"
    scenario.write_text(SCENARIO.replace("EPOCHS", "2"))
    rundir = base / "run"
    assert main(["run", str(scenario), "--out", str(rundir), "--quiet"]) == 0
    return scenario, rundir


def _stages(rundir):
    return json.loads((rundir / "run.json").read_text())["stages"]


def test_run_writes_every_stage_and_the_report(run):
    _, rundir = run
    stages = _stages(rundir)
    expected = {"dataset:sim", "budget:sim", "train:pca2", "train:fc", "encode:pca2:sim", "encode:fc:sim",
                "metrics:pca2:sim", "metrics:fc:sim", "report"}
    assert expected <= set(stages) and all(entry["done"] for entry in stages.values())
    for model in ("pca2", "fc"):
        assert np.load(rundir / "models" / model / "latents-sim.npy").shape == (18, 2)
        metrics = json.loads((rundir / "metrics" / f"{model}-sim.json").read_text())
        assert metrics["schema"] == "simharps-metrics/1" and metrics["dataset"]["n"] == 18
        assert {"mig", "dci.disentanglement", "sap", "telluric.rejection"} <= set(metrics["metrics"])
    budget = json.loads((rundir / "budget-sim.json").read_text())
    assert budget["fractions"]["stellar"] > 0 and budget["n_spectra"] == 18
    html = (rundir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "tiny_run" in html


def test_rerun_skips_done_stages_and_a_changed_model_retrains_alone(run):
    scenario, rundir = run
    before = _stages(rundir)
    pca_mtime = (rundir / "models" / "pca2" / "pca.npz").stat().st_mtime_ns
    fc_mtime = (rundir / "models" / "fc" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["run", str(scenario), "--out", str(rundir), "--quiet"]) == 0
    after = _stages(rundir)
    for stage in ("dataset:sim", "train:pca2", "train:fc", "metrics:fc:sim"):
        assert after[stage] == before[stage]                          # not re-run: same hash, same timing
    assert (rundir / "models" / "fc" / "checkpoint.pt").stat().st_mtime_ns == fc_mtime
    scenario.write_text(SCENARIO.replace("EPOCHS", "3"))
    assert main(["run", str(scenario), "--out", str(rundir), "--quiet"]) == 0
    changed = _stages(rundir)
    assert changed["train:fc"]["hash"] != before["train:fc"]["hash"]
    assert changed["train:pca2"] == before["train:pca2"] and changed["dataset:sim"] == before["dataset:sim"]
    assert (rundir / "models" / "pca2" / "pca.npz").stat().st_mtime_ns == pca_mtime
    history = json.loads((rundir / "models" / "fc" / "history.json").read_text())["epochs"]
    assert len(history) == 3


def test_regress_passes_on_itself_and_fails_on_shuffled_latents(run, tmp_path, capsys):
    scenario, rundir = run
    baseline = tmp_path / "baseline.json"
    assert main(["regress", str(rundir / "metrics"), "--baseline", str(baseline), "--update",
                 "--tolerances", str(scenario)]) == 0
    assert main(["regress", str(rundir / "metrics"), "--baseline", str(baseline)]) == 0
    model_dir = rundir / "models" / "pca2"
    latents = np.load(model_dir / "latents-sim.npy")
    np.save(model_dir / "latents-sim.npy", np.random.default_rng(0).permutation(latents))     # the planted drift
    drifted = tmp_path / "metrics"
    assert main(["evaluate", str(model_dir), "--out", str(drifted / "pca2-sim.json")]) == 0
    (drifted / "fc-sim.json").write_text((rundir / "metrics" / "fc-sim.json").read_text())
    capsys.readouterr()
    assert main(["regress", str(drifted), "--baseline", str(baseline)]) == 1
    table = capsys.readouterr().out
    assert "pca2/sim/repeat.ratio_median" in table
    failing = [line for line in table.splitlines() if "pca2/sim/repeat.ratio_median" in line][0]
    assert "FAIL" in failing.upper()
    np.save(model_dir / "latents-sim.npy", latents)


def test_report_command_rebuilds_and_refuses_a_non_run(run, tmp_path, capsys):
    _, rundir = run
    (rundir / "report.html").unlink()
    assert main(["report", str(rundir)]) == 0 and (rundir / "report.html").exists()
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
