"""The one training loop: every model learns, runs are deterministic, resuming equals not stopping, DDP equals one
process, real and simulated sets go through the same calls, and analysis/ never imports the simulator."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_data import write_synthetic

from analysis.config import AnalysisConfig
from analysis.encode import encode_dataset
from analysis.train import train_model
from simharps.cli import main
from simharps.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
WINDOW = {"recipe": "window", "start_aa": 6275.0, "n_pixels": 1024}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("train") / "ds", n_targets=8, epochs=4)


def _analysis(models, **training):
    return AnalysisConfig.model_validate({
        "split": {"by": "target", "fractions": [0.5, 0.25, 0.25]}, "preprocessing": WINDOW, "models": models,
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "threads": 1, "schedule": "none",
                     "early_stopping": None, **training}})


def _history(model_dir):
    return json.loads((Path(model_dir) / "history.json").read_text())["epochs"]


def _weights(model_dir):
    return torch.load(Path(model_dir) / "checkpoint.pt", weights_only=False)["model"]


@pytest.mark.parametrize("entry", [
    {"name": "fc", "kind": "fc_ae", "latent_dim": 2},
    {"name": "fcvae", "kind": "fc_ae", "latent_dim": 2, "variational": True},
    {"name": "ae", "kind": "ae1d", "latent_dim": 4, "variational": False},
    {"name": "aevae", "kind": "ae1d", "latent_dim": 4},
])
def test_every_torch_model_learns_and_writes_the_contract_files(synthetic, tmp_path, entry):
    # the convolutional models need ~60 steps to learn the mean level (inputs ~1): 25 epochs of 4 batches of 4
    steps = {"epochs": 25, "batch_size": 4} if entry["kind"] == "ae1d" else {}
    analysis = _analysis([entry], kl={"start": 0, "stop": 10}, **steps)
    model_dir = tmp_path / "models" / entry["name"]
    train_model(analysis.models[0], analysis, synthetic, model_dir, tmp_path / "cache", progress=False)
    history = _history(model_dir)
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert {"config.json", "checkpoint.pt", "history.json", "split.npy"} <= {p.name for p in model_dir.iterdir()}
    latents_path, recon_path = encode_dataset(model_dir, synthetic, "sim", tmp_path / "cache", n_reconstructions=3)
    latents = np.load(latents_path)
    assert latents.shape == (len(synthetic), entry["latent_dim"]) and latents.dtype == np.float32
    record = np.load(recon_path)
    assert record["input"].shape == record["output"].shape == (3, 1024)
    labels = np.load(model_dir / "split.npy")
    assert set(labels[record["spectrum_index"]]) == {"test"}                 # held-out spectra shown first
    assert record["expected_telluric_free"].shape == (3, 1024)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["preprocessing"]["recipe"] == "window" and config["dataset"]["fingerprint"]


def test_pca_recovers_the_planted_structure_and_reports_explained_variance(synthetic, tmp_path):
    analysis = _analysis([{"name": "pca", "kind": "pca", "latent_dim": 3}])
    model_dir = tmp_path / "pca"
    train_model(analysis.models[0], analysis, synthetic, model_dir, tmp_path / "cache", progress=False)
    history = json.loads((model_dir / "history.json").read_text())
    # continuum slope, stellar line position/depth and telluric line position explain nearly all the variance
    assert sum(history["explained_variance_ratio"]) > 0.5
    assert history["epochs"][0]["val_loss"] < 0.01
    latents, _ = encode_dataset(model_dir, synthetic, "sim", tmp_path / "cache")
    assert np.load(latents).shape == (len(synthetic), 3)


def test_same_config_and_seed_give_identical_weights_and_latents(synthetic, tmp_path):
    analysis = _analysis([{"name": "m", "kind": "fc_ae", "latent_dim": 2, "variational": True}], epochs=2)
    runs = []
    for run in ("a", "b"):
        model_dir = tmp_path / run / "m"
        train_model(analysis.models[0], analysis, synthetic, model_dir, tmp_path / "cache", progress=False)
        latents, _ = encode_dataset(model_dir, synthetic, "sim", tmp_path / "cache")
        runs.append((_weights(model_dir), np.load(latents)))
    for name, value in runs[0][0].items():
        assert torch.equal(value, runs[1][0][name]), name
    assert np.array_equal(runs[0][1], runs[1][1])
    other = _analysis([{"name": "m", "kind": "fc_ae", "latent_dim": 2, "variational": True}], epochs=2, seed=1)
    train_model(other.models[0], other, synthetic, tmp_path / "c" / "m", tmp_path / "cache", progress=False)
    first = next(iter(runs[0][0]))
    assert not torch.equal(_weights(tmp_path / "c" / "m")[first], runs[0][0][first])


def test_killed_and_resumed_equals_uninterrupted(synthetic, tmp_path):
    analysis = _analysis([{"name": "m", "kind": "ae1d", "latent_dim": 4}], epochs=3, kl={"start": 0, "stop": 4},
                         schedule="plateau", early_stopping={"patience": 5})
    model = analysis.models[0]
    train_model(model, analysis, synthetic, tmp_path / "whole", tmp_path / "cache", progress=False)
    train_model(model, analysis, synthetic, tmp_path / "parts", tmp_path / "cache", progress=False, max_epochs=1)
    assert len(_history(tmp_path / "parts")) == 1
    train_model(model, analysis, synthetic, tmp_path / "parts", tmp_path / "cache", progress=False, max_epochs=1)
    train_model(model, analysis, synthetic, tmp_path / "parts", tmp_path / "cache", progress=False)
    whole, parts = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    for name in whole:
        assert torch.equal(whole[name], parts[name]), name
    assert [e["train_loss"] for e in _history(tmp_path / "whole")] == [e["train_loss"] for e in
                                                                        _history(tmp_path / "parts")]


@pytest.mark.slow
def test_distributed_data_parallel_equals_one_process(synthetic, tmp_path):
    analysis = {"split": {"by": "target", "fractions": [0.5, 0.25, 0.25]}, "preprocessing": WINDOW,
                # deterministic model: a VAE's sampling noise is drawn per rank, so it differs from one process's
                "models": [{"name": "m", "kind": "fc_ae", "latent_dim": 2}],
                "training": {"epochs": 2, "batch_size": 8, "learning_rate": 2e-3, "threads": 1, "device": "cpu"}}
    (tmp_path / "analysis.json").write_text(json.dumps(analysis))
    script = tmp_path / "train_one.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        from analysis.config import AnalysisConfig
        from analysis.train import train_model
        from simharps.dataset import open_dataset
        analysis = AnalysisConfig.model_validate(json.load(open({str(tmp_path / 'analysis.json')!r})))
        train_model(analysis.models[0], analysis, open_dataset({str(synthetic.path)!r}), sys.argv[1],
                    {str(tmp_path / 'cache')!r}, progress=False)
    """))
    subprocess.run([sys.executable, str(script), str(tmp_path / "single")], check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                    str(script), str(tmp_path / "ddp")], check=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    single, ddp = _weights(tmp_path / "single"), _weights(tmp_path / "ddp")
    for name in single:
        assert torch.allclose(single[name], ddp[name], rtol=1e-4, atol=1e-6), name
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2


def test_analysis_never_imports_a_simulator_stage():
    code = ("import sys, analysis.train, analysis.encode, analysis.cache, analysis.preprocess, analysis.metrics, "
            "analysis.report, analysis.regress\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('simharps'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    allowed = ("simharps", "simharps.dataset", "simharps.grids", "simharps.errors", "simharps.constants",
               "simharps.workers")   # process infrastructure of the dataset runner, no physics
    offending = [m for m in loaded if not any(m == a or (a == "simharps.dataset" and m.startswith(a + "."))
                                              for a in allowed)]
    assert offending == []
    assert "simharps.dataset.reader" in loaded


def test_cli_trains_encodes_and_refuses_unknown_models(synthetic, tmp_path, capsys):
    model_file = tmp_path / "model.yaml"
    model_file.write_text("name: tiny\nkind: fc_ae\nlatent_dim: 2\npreprocessing: {recipe: window, start_aa: 6275.0,"
                          " n_pixels: 1024}\ntraining: {epochs: 2, threads: 1}\n"
                          "split: {by: target, fractions: [0.5, 0.5, 0.0]}\n")
    out = tmp_path / "run"
    assert main(["train", str(synthetic.path), "--model", str(model_file), "--out", str(out), "--quiet"]) == 0
    assert np.load(out / "models" / "tiny" / "latents-sim.npy").shape == (len(synthetic), 2)
    assert main(["encode", str(out / "models" / "tiny"), str(synthetic.path), "--name", "again"]) == 0
    assert np.array_equal(np.load(out / "models" / "tiny" / "latents-again.npy"),
                          np.load(out / "models" / "tiny" / "latents-sim.npy"))
    assert main(["train", str(synthetic.path), "--model", f"{ROOT / 'scenarios' / 'quickstart.yaml'}:nope",
                 "--out", str(out)]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_analysis_section_errors_name_the_line_and_key(tmp_path):
    base = "name: t\nseed: 1\npopulation: {n_targets: 2}\n"
    cases = [("analysis:\n  models:\n    - {name: a, kind: fc_ea}\n", 6, "analysis.models[0].kind"),
             ("analysis:\n  split: {by: target, fractions: [0.5, 0.2, 0.2]}\n", 5, "add up to 1"),
             ("analysis:\n  preprocessing: {recipe: window}\n", 5, "start_aa"),
             ("analysis:\n  preprocessing: {frame: barycentric, whitening: {max_kms: 30}}\n", 5, "observatory"),
             ("analysis:\n  trainig: {epochs: 3}\n", 5, "did you mean 'training'")]
    for text, line, words in cases:
        with pytest.raises(Exception) as caught:
            Scenario.from_yaml(base + text, path=tmp_path / "s.yaml")
        assert f"line {line}" in str(caught.value) and words in str(caught.value), str(caught.value)
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert load_scenario(path).analysis_config.models, path


def test_real_alpha_cen_b_series_goes_through_the_same_calls(shared_data, tmp_path):
    from simharps.pipeline import ingest_paths

    files = sorted((shared_data / "harps_series" / "alfcenb").glob("*.fits"))[::6]     # 15 of 86, all nights
    dataset = ingest_paths(files, tmp_path / "alfcenb", progress=False)
    analysis = AnalysisConfig.model_validate({
        "split": {"by": "night", "fractions": [0.6, 0.4, 0.0]},
        "preprocessing": {"recipe": "window", "start_aa": 6275.0, "n_pixels": 1024, "frame": "observatory"},
        "models": [{"name": "fc", "kind": "fc_ae", "latent_dim": 2}],
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 2e-3, "threads": 1}})
    train_model(analysis.models[0], analysis, dataset, tmp_path / "fc", tmp_path / "cache", progress=False)
    latents, recon = encode_dataset(tmp_path / "fc", dataset, "alfcenb", tmp_path / "cache", n_reconstructions=2)
    assert np.load(latents).shape == (len(dataset), 2)
    assert np.all(np.isfinite(np.load(latents)))
    record = np.load(recon)
    assert record["telluric"].min() < 0.9          # the ingested telluric component of the O2 gamma band
    assert "stellar" not in record                 # real sets carry no stellar truth
