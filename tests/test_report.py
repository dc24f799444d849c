"""Validation report: a fake but schema-correct run directory, escaping, sections, and a real-browser check."""

import base64
import io
import json
import os
import re
import shutil

import numpy as np
import pytest

from analysis.regress import BASELINE_SCHEMA
from analysis.report import build_report
from analysis.report.figures import axis_label, latent_scatter, repeat_tracks
from analysis.report.spectra import zoom_windows
from simharps.dataset import write_dataset

EVIL = "<script>alert(1)</script>"
NA_D_AA = (5889.95, 5895.92)
WATER_AA = (5886.6, 5887.4, 5900.8, 5901.9, 5902.7)


def gaussian_lines(wave, centres, depth, sigma):
    return np.prod([1 - depth * np.exp(-0.5 * ((wave - c) / sigma) ** 2) for c in centres], axis=0)


def make_dataset(path, n_targets, n_epochs, source, seed):
    rng = np.random.default_rng(seed)
    wave = np.round(np.arange(5884.0, 5904.0, 0.04), 2)
    rows, flux, telluric, stellar = [], [], [], []
    for t in range(n_targets):
        teff = rng.uniform(4800, 6300)
        for e in range(n_epochs):
            pwv, berv = rng.lognormal(np.log(4), 0.4), rng.uniform(-25, 25)
            tel = gaussian_lines(wave, WATER_AA, min(0.9, 0.1 * pwv), 0.03)
            star = gaussian_lines(wave * (1 - berv / 3e5), NA_D_AA, 0.5 + (6300 - teff) / 5000, 0.12)
            telluric.append(tel)
            stellar.append(star)
            flux.append(1e4 * tel * star + rng.normal(0, 30, wave.size))
            rows.append({"target_id": f"HD {100 + t}", "epoch": e, "teff_k": teff, "logg_cgs": 4.4 + 0.01 * t,
                         "pwv_mm": pwv, "berv_kms": berv, "rv_kms": 10.0 + t, "airmass": 1 + 0.1 * e,
                         "mjd_utc": 55000.0 + 30 * e, "object": EVIL if t == 0 else f"star {t} $x$"})
    flux = np.array(flux)
    arrays = {"flux": flux, "error": np.full_like(flux, 30.0), "telluric": np.array(telluric),
              "stellar": np.array(stellar)}
    write_dataset(path, wave, arrays, rows, source=source)
    return wave, arrays, rows


def metrics_doc(model, dataset, source, n, latent_dim, shift=0.0):
    factors = {"teff_k": "intrinsic", "logg_cgs": "intrinsic", "pwv_mm": "extrinsic", "airmass": "extrinsic",
               "berv_kms": "kinematic", "rv_kms": "kinematic"}
    rng = np.random.default_rng(latent_dim)
    values = {"mig": 0.3 + shift, "dci.disentanglement": 0.5, "repeat.ratio": 0.2, "telluric.rejection": 0.7,
              "stellar.rejection": 0.1, "telluric.residual_rms_noise": 1.2, "stellar.residual_rms_noise": 1.1,
              "continuum.residual_rms_noise": 1.0}
    matrix = {"rows": [f"z{i}" for i in range(latent_dim)], "cols": list(factors),
              "values": rng.uniform(0, 1, (latent_dim, len(factors))).tolist()}
    return {"schema": "simharps-metrics/1", "model": model,
            "dataset": {"name": dataset, "fingerprint": "abc123", "source": source, "n": n},
            "factors": factors,
            "metrics": {k: {"value": v, "ci_low": v - 0.02, "ci_high": v + 0.02, "estimator": EVIL, "n": n,
                            "params": {}} for k, v in values.items()},
            "matrices": {"mi_ksg_nats": matrix, "mi_study_indicator": {**matrix, "values": (np.array(
                matrix["values"]) ** 2).tolist()}, "mi_factors_nats": matrix}}


def make_run(rundir):
    """A fake run: 2 models (2-D and 4-D latents) on a simulated and a real dataset, metrics and a baseline."""
    datasets = {"sim": (10, 5, "simulated"), "alfcenb": (2, 6, "real")}
    run = {"schema": "simharps-run/1",
           "scenario": {"name": f"quick{EVIL}", "path": "scenarios/x.yaml", "text": f"name: {EVIL}\n",
                        "sha256": "0" * 64},
           "versions": {"simharps": "0.1.0", "numpy": np.__version__}, "seed": 7,
           "hardware": {"cpu": f"fake {EVIL}", "n_cores": 2, "torch_threads": 2, "device": "cpu"},
           "stages": {"simulate:sim": {"hash": "a" * 64, "done": True, "seconds": 3.2},
                      "train:fcae2": {"hash": "b" * 64, "done": True, "seconds": 10.5}},
           "datasets": {}, "models": {"fcae2": {"kind": "fc_ae", "latent_dim": 2, "seed": 0},
                                      "ae1d": {"kind": "ae1d", "latent_dim": 4, "seed": 0}},
           "baseline": str(rundir / "baseline.json")}
    (rundir / "metrics").mkdir(parents=True)
    for seed, (name, (n_targets, n_epochs, source)) in enumerate(datasets.items()):
        path = rundir / "datasets" / name
        wave, arrays, rows = make_dataset(path, n_targets, n_epochs, source, seed)
        run["datasets"][name] = {"path": str(path), "fingerprint": f"fp-{name}", "source": source}
        n = len(rows)
        teff = np.array([r["teff_k"] for r in rows])
        pwv = np.array([r["pwv_mm"] for r in rows])
        for model, dim in (("fcae2", 2), ("ae1d", 4)):
            mdir = rundir / "models" / model
            mdir.mkdir(parents=True, exist_ok=True)
            base = np.column_stack([(teff - 5500) / 500, np.log(pwv)] + [np.sin(teff + k) for k in range(dim - 2)])
            np.save(mdir / f"latents-{name}.npy", base.astype(np.float32))
            pick = np.array([0, 3, 7])
            norm = arrays["flux"][pick] / 1e4
            mask = np.ones_like(norm, dtype=bool)
            mask[:, :10] = False
            np.savez(mdir / f"reconstructions-{name}.npz", spectrum_index=pick, input=norm,
                     output=norm + np.random.default_rng(1).normal(0, 0.01, norm.shape), mask=mask,
                     wavelength_aa=wave, telluric=arrays["telluric"][pick], stellar=arrays["stellar"][pick])
            history = {"epochs": [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "seconds": 0.5}
                                  for e in range(1, 9)]}
            (mdir / "history.json").write_text(json.dumps(history))
            (mdir / "config.json").write_text(json.dumps({"model": model, "latent_dim": dim}))
            doc = metrics_doc(model, name, source, n, dim)
            (rundir / "metrics" / f"{model}-{name}.json").write_text(json.dumps(doc))
    baseline = {"schema": BASELINE_SCHEMA, "source": {}, "metrics": {
        "fcae2/sim/mig": {"value": 0.3, "tolerance": {"abs": 0.01}},
        "ae1d/sim/mig": {"value": 0.5, "tolerance": {"abs": 0.01}},
        "ae1d/sim/gone": {"value": 0.5, "tolerance": {"rel": 0.1}}}}
    (rundir / "baseline.json").write_text(json.dumps(baseline))
    (rundir / "run.json").write_text(json.dumps(run))
    return rundir


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rundir = make_run(tmp_path_factory.mktemp("run"))
    path = build_report(rundir)
    return path, path.read_text(encoding="utf-8")


def test_report_is_one_self_contained_file_with_every_section(report):
    path, text = report
    assert path.name == "report.html" and path.stat().st_size < 3e6
    for anchor in ("provenance", "regression", "distributions", "losses", "examples", "mi", "latents", "telluric",
                   "metrics"):
        assert f'id="{anchor}"' in text, anchor
    assert 'id="notes"' not in text, re.findall(r'<li>(.*?)</li>', text)
    assert not re.search(r'(?:src|href)="(?!data:|#)', text)
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) >= 10
    from PIL import Image
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.size[0] > 100 and image.size[1] > 100


def test_every_untrusted_string_is_escaped(report):
    _, text = report
    assert "<script" not in text.lower()
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    assert "fake &lt;script&gt;" in text and "quick&lt;script&gt;" in text


def test_metrics_marked_against_the_baseline(report):
    _, text = report
    assert "2 of 3 baseline metrics within tolerance" not in text
    assert "1 of 3 baseline metrics within tolerance" in text
    assert "✓ pass" in text and "✗ FAIL" in text and "✗ missing" in text
    assert "telluric rejection" in text and "stellar rejection" in text and "continuum residual_rms_noise" in text
    assert "alfcenb (real)" in text and "sim (simulated)" in text


def test_missing_inputs_leave_sections_out(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "pca-sim.json").write_text(json.dumps(metrics_doc("pca", "sim", "simulated", 10, 2)))
    text = build_report(tmp_path).read_text()
    assert 'id="mi"' in text and 'id="metrics"' in text and 'id="telluric"' in text
    for anchor in ("regression", "distributions", "losses", "examples", "latents"):
        assert f'id="{anchor}"' not in text
    assert "run.json absent" in text
    assert 'id="notes"' in build_report(tmp_path / "metrics", out=tmp_path / "empty.html").read_text()


def test_degenerate_inputs_still_give_a_report(tmp_path):
    mdir = tmp_path / "models" / "m"
    mdir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    spectra = rng.normal(1, 0.01, (2, 300))
    np.savez(mdir / "reconstructions-x.npz", spectrum_index=np.arange(2), input=spectra, output=spectra)
    np.save(mdir / "latents-x.npy", rng.normal(size=(5, 1)).astype(np.float32))
    (mdir / "history.json").write_text('{"epochs": []}')
    (tmp_path / "run.json").write_text(json.dumps({"datasets": {"x": {"path": str(tmp_path / "nowhere")}}}))
    text = build_report(tmp_path).read_text()
    assert 'id="examples"' in text and 'id="notes"' in text
    assert "dataset x: not readable" in text and "5 latents but the table is missing" in text
    assert 'id="losses"' not in text and 'id="latents"' not in text


def test_one_dimensional_latents_are_plotted_against_factors_and_epochs():
    z = np.arange(6.0)[:, None]
    assert latent_scatter(z, ["z1 [latent a.u.]"], {"teff_k": np.arange(6.0) * 100}).startswith("data:image/png")
    assert repeat_tracks(z, ["z1 [latent a.u.]"], {"HD 1": np.array([0, 2, 4])}).startswith("data:image/png")


def test_zoom_windows_find_the_telluric_band_and_the_stellar_lines():
    wave = np.arange(5884.0, 5904.0, 0.04)
    telluric = gaussian_lines(wave, WATER_AA, 0.6, 0.03)[None]
    stellar = gaussian_lines(wave, NA_D_AA, 0.7, 0.12)[None]
    (_, full), (tell_title, tell), (star_title, star) = zoom_windows(wave.size, wave, telluric, stellar)
    assert full == slice(0, wave.size) and "telluric" in tell_title and "stellar" in star_title
    assert any(wave[tell.start] <= c <= wave[tell.stop - 1] for c in WATER_AA)
    assert any(wave[star.start] <= c <= wave[star.stop - 1] for c in NA_D_AA)
    assert [t for t, _ in zoom_windows(4000, np.arange(5160.0, 5200.0, 0.01))][1].startswith("Mg b")
    assert len(zoom_windows(4000)) == 1


def test_axis_labels_carry_units():
    assert axis_label("teff_k") == "teff_k [K]"
    assert axis_label("berv_kms") == "berv_kms [km/s]"
    assert axis_label("airmass") == "airmass [dimensionless]"
    assert axis_label("price$") == r"price\$ [no unit]"


def _browser_or_skip():
    """(webdriver module pieces) or skip with the reason; with CI=true a missing browser fails instead."""
    reasons = []
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        reasons.append("selenium not installed (pip install selenium)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        reasons.append("chromium/chromedriver absent (scripts/ensure_chromium.sh installs them)")
    if reasons:
        message = "; ".join(reasons)
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run in CI: {message}")
        pytest.skip(message)
    return webdriver, Service, browser, driver


def test_missing_browser_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium/chromedriver absent"):
        _browser_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        _browser_or_skip()


@pytest.mark.slow
def test_report_in_headless_chromium(report):
    webdriver, Service, browser, driver_path = _browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.get(report[0].resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);")
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        screenshot = driver.get_screenshot_as_png()
        title = driver.execute_script("return document.title;")
    finally:
        driver.quit()
    assert not severe, [entry["message"][:300] for entry in severe]
    assert len(images) >= 10 and all(complete and width > 0 for complete, width in images), images
    assert "<script>" in title  # the scenario name shown as text, not run as markup
    from PIL import Image
    pixels = np.asarray(Image.open(io.BytesIO(screenshot)).convert("L"), dtype=float)
    assert pixels.std() > 10
