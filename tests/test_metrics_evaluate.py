"""The metrics document (analysis.metrics.evaluate): schema, names, factor handling, options and the sub-metrics."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.table import Table

from analysis.metrics import evaluate, format_table, metrics_config, select_factors

FAST = {"n_subsamples": 5, "n_permutations": 8, "n_folds": 3}
CORE = ("mig", "modularity.all", "modularity.informative", "sap", "informative_dims", "dci.disentanglement",
        "dci.completeness", "dci.informativeness", "following.intrinsic", "following.extrinsic",
        "following.kinematic", "following.none", "repeat.ratio_median", "telluric.rejection", "stellar.rejection",
        "telluric.residual_rms_noise", "stellar.residual_rms_noise", "continuum.residual_rms_noise")


def population(n_targets=40, n_epochs=6, seed=0):
    rng = np.random.default_rng(seed)
    n = n_targets * n_epochs
    each = lambda values: np.repeat(values, n_epochs)                          # noqa: E731 (per-target column)
    return Table({"spectrum_index": np.arange(n), "failed": np.zeros(n, bool),
                  "target_id": each([f"T{i:05d}" for i in range(n_targets)]),
                  "target_index": each(np.arange(n_targets)), "epoch": np.tile(np.arange(n_epochs), n_targets),
                  "teff_k": each(rng.uniform(4000, 6500, n_targets)), "logg_cgs": each(rng.uniform(4, 4.6, n_targets)),
                  "berv_kms": rng.uniform(-30, 30, n), "airmass": rng.uniform(1, 2, n), "pwv_mm": rng.uniform(1, 10, n),
                  "seeing_arcsec": np.full(n, -1.0), "instrument_mode": rng.choice(["HAM", "EGGS"], n),
                  "mjd_utc": 55000 + rng.uniform(0, 2000, n), "efficiency": np.full(n, 0.1)})


def latents(table, seed=1):
    rng = np.random.default_rng(seed)
    n = len(table)
    teff = (np.asarray(table["teff_k"]) - 5000) / 800
    return np.column_stack([teff + 0.05 * rng.normal(size=n), np.asarray(table["berv_kms"]) / 20,
                            rng.normal(size=n), 0.001 * rng.normal(size=n)]).astype(np.float32)


@pytest.fixture(scope="module")
def document():
    table = population()
    return table, evaluate(latents(table), table, config=FAST, model="toy", dataset_info={"name": "sim"})


def test_document_schema_and_json(document):
    table, doc = document
    assert doc["schema"] == "simharps-metrics/1" and doc["model"] == "toy"
    assert doc["dataset"] == {"name": "sim", "fingerprint": None, "source": None, "n": len(table)}
    json.dumps(doc, allow_nan=False)                                         # no NaN reaches JSON
    for name in CORE:
        assert set(doc["metrics"][name]) == {"value", "ci_low", "ci_high", "estimator", "n", "params"}
    for m in ("mi_ksg_nats", "mi_factors_nats", "dci_importance", "mi_study_indicator.b160", "repeat_dispersion"):
        assert set(doc["matrices"][m]) == {"rows", "cols", "values"}
    assert doc["matrices"]["mi_ksg_nats"]["rows"] == ["z0", "z1", "z2", "z3"]
    assert "mig" in format_table(doc)


def test_factors_groups_and_skips(document):
    _, doc = document
    assert doc["factors"] == {"teff_k": "intrinsic", "logg_cgs": "intrinsic", "target_id": "intrinsic",
                              "berv_kms": "kinematic", "airmass": "extrinsic", "pwv_mm": "extrinsic",
                              "instrument_mode": "extrinsic"}
    skipped = doc["info"]["skipped_factors"]
    assert "seeing_arcsec" in skipped                                        # the -1 header sentinel is missing
    assert "night" in skipped                                                # ~one spectrum per night
    assert "efficiency" not in doc["factors"] and "epoch" not in doc["factors"]
    assert {"probe.linear_r2.teff_k", "probe.nonlinear_r2.berv_kms", "probe.linear_accuracy.instrument_mode",
            "mi.max_nats.target_id"} <= set(doc["metrics"])
    assert "probe.linear_accuracy.target_id" not in doc["metrics"]           # identities: MI only


def test_values_follow_the_planted_latents(document):
    _, doc = document
    m = doc["metrics"]
    assert m["informative_dims"]["value"] == 3
    assert m["following.intrinsic"]["value"] == pytest.approx(1 / 3)          # z0 follows teff
    assert m["following.kinematic"]["value"] == pytest.approx(1 / 3)          # z1 follows berv
    assert m["following.none"]["value"] == pytest.approx(1 / 3)               # z2 is noise
    assert m["mi.max_nats.teff_k"]["params"]["argmax"] == "z0"
    assert m["mi.max_nats.pwv_mm"]["value"] < 0.1
    assert m["probe.linear_r2.teff_k"]["value"] > 0.99 and m["probe.linear_r2.pwv_mm"]["value"] < 0.05
    low, high = m["mig"]["ci_low"], m["mig"]["ci_high"]
    assert low < m["mig"]["value"] < high
    assert m["telluric.rejection"]["value"] is None and m["telluric.rejection"]["params"]["skipped"]


def test_names_stable_for_other_latents(document):
    table, doc = document
    other = evaluate(np.random.default_rng(5).normal(size=(len(table), 4)), table, config=FAST)
    assert set(other["metrics"]) == set(doc["metrics"])
    json.dumps(other, allow_nan=False)


def test_config_handling():
    assert metrics_config(None)["ksg_k"] == 3
    assert metrics_config(SimpleNamespace(model_dump=lambda: {"ksg_k": 5}))["ksg_k"] == 5
    with pytest.raises(ValueError, match="unknown metrics option"):
        metrics_config({"ksg": 3})
    table = population(10, 3)
    with pytest.raises(ValueError, match="not in the dataset table"):
        select_factors(table, ["teff_k", "colour"])
    with pytest.raises(ValueError, match="one row per"):
        evaluate(np.zeros((5, 2)), table)


def test_failed_rows_and_unique_per_star():
    table = population(30, 4)
    table["failed"][::7] = True
    z = latents(table)
    z[1] = np.nan                                                             # non-finite latents are excluded too
    doc = evaluate(z, table, config={**FAST, "unique_per_star": True})
    expected = len(table) - len(table[::7]) - 1
    assert doc["dataset"]["n"] == expected
    assert doc["metrics"]["mi.max_nats.teff_k"]["n"] == 30                    # one spectrum per star
    assert doc["metrics"]["mi.max_nats.target_id"]["value"] is None           # unique per star: no repeats left


def test_single_star_series_uses_nights_and_reference():
    rng = np.random.default_rng(3)
    n = 40
    nights = np.repeat(np.arange(10), 4)
    table = Table({"spectrum_index": np.arange(n), "target_id": ["alfcenb"] * n,
                   "mjd_utc": 58000 + nights * 3 + 0.75 + rng.uniform(0, 0.2, n),     # 18h-23h UT: one night each
                   "berv_kms": rng.uniform(-20, 20, n), "airmass": rng.uniform(1, 1.5, n),
                   "snr_550": rng.uniform(100, 300, n), "seeing_arcsec": np.full(n, -1.0)})
    z = np.column_stack([np.asarray(table["berv_kms"]) / 20, 0.1 * rng.normal(size=n)])
    reference = population()
    ref_z = latents(reference)[:, :2]
    doc = evaluate(z, table, config=FAST, reference=(ref_z, reference))
    assert doc["info"]["clusters"] == "night"
    assert set(doc["factors"]) == {"berv_kms", "airmass", "snr_550", "night"}
    assert doc["metrics"]["repeat.ratio_median"]["value"] is not None
    assert doc["metrics"]["mi.max_nats.berv_kms"]["value"] > 1.0
    no_reference = evaluate(z, table, config=FAST)
    assert no_reference["metrics"]["repeat.ratio_median"]["value"] is None


def test_paired_design_gives_nuisance_sensitivity():
    rng = np.random.default_rng(4)
    base = population(30, 2)
    rows = []
    for row in base:
        for variant, pwv in enumerate((row["pwv_mm"], 1.0, 10.0)):
            rows.append({**{c: row[c] for c in base.colnames}, "variant": variant, "pwv_mm": pwv,
                         "design_group": row["target_index"] * 2 + row["epoch"]})
    table = Table(rows=rows)
    table["spectrum_index"] = np.arange(len(table))
    z = np.column_stack([np.asarray(table["pwv_mm"]) / 3, np.asarray(table["teff_k"]) / 1000,
                         rng.normal(size=len(table))])
    doc = evaluate(z, table, config=FAST)
    entry = doc["metrics"]["nuisance.pwv_mm.shift_max"]
    assert entry["value"] > 0.5 and entry["params"]["variants"] == [1, 2]
    assert doc["matrices"]["nuisance_shift"]["cols"] == ["pwv_mm/variant1", "pwv_mm/variant2"]


def test_telluric_inputs_through_evaluate():
    rng = np.random.default_rng(6)
    table = population(4, 12)
    n_pix = 1500
    x = np.arange(n_pix)
    S = 1 - 0.5 * np.exp(-0.5 * ((x[None, :] % 100 - 50) / 2.0) ** 2) * np.ones((12, 1))
    T = np.stack([1 - 0.4 * np.exp(-0.5 * (((x + 9 * i) % 150 - 75) / 1.5) ** 2) for i in range(12)])
    C = 800 * S
    sigma = np.sqrt(C * T)
    data = C * T + rng.normal(size=C.shape) * sigma
    recon = C * T + 0.5 * C * (1 - T)                                         # half the telluric depth removed
    rows = np.flatnonzero(np.asarray(table["target_id"]) == "T00001")
    telluric = {"spectrum_index": rows, "data": data, "reconstruction": recon, "sigma": sigma, "telluric": T,
                "stellar": S, "expected": C}
    doc = evaluate(latents(table), table, config=FAST, telluric=telluric)
    assert doc["metrics"]["telluric.rejection"]["value"] == pytest.approx(0.5, abs=0.02)
    assert doc["metrics"]["stellar.rejection"]["value"] == pytest.approx(0.0, abs=0.02)
    real = {k: v for k, v in telluric.items() if k not in ("stellar", "expected")}
    table["berv_kms"][rows] = np.linspace(-15, 15, 12)
    doc = evaluate(latents(table), table, config=FAST, telluric=real)
    assert "per-target median" in doc["metrics"]["telluric.rejection"]["params"]["note"]
    assert doc["metrics"]["telluric.rejection"]["value"] == pytest.approx(0.5, abs=0.1)
    table["berv_kms"][rows] = 1.0                                               # no BERV span: nothing qualifies
    doc = evaluate(latents(table), table, config=FAST, telluric=real)
    assert doc["metrics"]["telluric.rejection"]["value"] is None
    assert doc["metrics"]["telluric.residual_rms_noise"]["value"] > 1


@pytest.mark.skipif(not Path("/tmp/work/ci/manifest.json").exists(), reason="no CI dataset at /tmp/work/ci")
def test_on_a_simulated_dataset_table():
    from simharps.dataset import open_dataset
    table = open_dataset("/tmp/work/ci").table
    doc = evaluate(np.random.default_rng(0).normal(size=(len(table), 3)).astype(np.float32), table, config=FAST)
    json.dumps(doc, allow_nan=False)
    assert doc["dataset"]["n"] == len(table)
