"""CI regression of metrics: tolerance kinds, missing metrics, a planted drift, baseline round trip."""

import json

import numpy as np
import pytest

from analysis.regress import (BASELINE_SCHEMA, SPREAD_K, compare, format_rows, lookup_tolerance, main,
                              make_baseline, regress, write_baseline)
from simharps.errors import SimharpsError


def metrics_doc(values, model="fcae2", dataset="sim", ci=0.0):
    """A simharps-metrics/1 document with the given scalar values (interval value +- ci)."""
    return {"schema": "simharps-metrics/1", "model": model,
            "dataset": {"name": dataset, "fingerprint": "f" * 8, "source": "simulated", "n": 100},
            "factors": {"teff_k": "intrinsic", "pwv_mm": "extrinsic"},
            "metrics": {name: {"value": v, "ci_low": v - ci, "ci_high": v + ci, "estimator": "test", "n": 100,
                               "params": {}} for name, v in values.items()},
            "matrices": {}}


def baseline_doc(entries):
    return {"schema": BASELINE_SCHEMA, "source": {}, "metrics": entries}


def status(rows):
    return {row["metric"]: row["status"] for row in rows}


def test_pass_and_each_tolerance_kind_fails():
    base = baseline_doc({
        "fcae2/sim/mig": {"value": 0.30, "tolerance": {"abs": 0.05}},
        "fcae2/sim/dci.disentanglement": {"value": 0.50, "tolerance": {"rel": 0.1}},
        "fcae2/sim/telluric.rejection": {"value": 0.80, "ci_low": 0.75, "ci_high": 0.85,
                                         "tolerance": {"interval": True}}})
    good = metrics_doc({"mig": 0.34, "dci.disentanglement": 0.46, "telluric.rejection": 0.88}, ci=0.04)
    rows = compare(good, base)
    assert set(status(rows).values()) == {"pass"}
    bad = metrics_doc({"mig": 0.36, "dci.disentanglement": 0.44, "telluric.rejection": 0.90}, ci=0.04)
    assert set(status(compare(bad, base)).values()) == {"FAIL"}
    assert [row["tolerance"] for row in rows] == ["±10%", "±0.05", "CI overlap"]


def test_interval_without_ci_uses_the_point_value():
    base = baseline_doc({"m/d/x": {"value": 1.0, "ci_low": 0.9, "ci_high": 1.1, "tolerance": {"interval": True}}})
    assert status(compare(metrics_doc({"x": 1.05}, "m", "d"), base)) == {"m/d/x": "pass"}
    assert status(compare(metrics_doc({"x": 1.2}, "m", "d"), base)) == {"m/d/x": "FAIL"}


def test_missing_or_nan_metric_is_a_regression(tmp_path):
    base = baseline_doc({"fcae2/sim/mig": {"value": 0.3, "tolerance": {"abs": 0.05}},
                         "fcae2/sim/sap": {"value": 0.1, "tolerance": {"abs": 0.05}},
                         "pca/sim/mig": {"value": 0.2, "tolerance": {"abs": 0.05}}})
    doc = metrics_doc({"mig": 0.3, "sap": float("nan"), "extra": 1.0})
    assert status(compare(doc, base)) == {"fcae2/sim/mig": "pass", "fcae2/sim/sap": "invalid",
                                          "pca/sim/mig": "missing"}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    write_baseline(tmp_path / "b.json", base)
    rows, ok = regress(tmp_path / "m.json", tmp_path / "b.json")
    assert not ok and "2 REGRESSED" in format_rows(rows)


def test_bad_inputs_give_one_clear_error(tmp_path):
    with pytest.raises(SimharpsError, match="tolerance"):
        compare(metrics_doc({"mig": 0.3}), baseline_doc({"fcae2/sim/mig": {"value": 0.3, "tolerance": {"x": 1}}}))
    with pytest.raises(SimharpsError, match="simharps-baseline/1"):
        compare(metrics_doc({"mig": 0.3}), {"metrics": {}})
    with pytest.raises(SimharpsError, match="cannot read"):
        regress(tmp_path / "absent.json", tmp_path / "absent-baseline.json")


def test_tolerance_lookup_order():
    tolerances = {"fcae2/sim/mig": {"abs": 0.01}, "mig": {"abs": 0.02}, "telluric.*": {"interval": True},
                  "default": {"rel": 0.2}}
    assert lookup_tolerance("fcae2/sim/mig", tolerances) == {"abs": 0.01}
    assert lookup_tolerance("pca/sim/mig", tolerances) == {"abs": 0.02}
    assert lookup_tolerance("pca/sim/telluric.rejection", tolerances) == {"interval": True}
    assert lookup_tolerance("pca/sim/sap", tolerances) == {"rel": 0.2}
    assert lookup_tolerance("pca/sim/sap", {}) == {"rel": 0.1}


def mig_like(latents, factors, bins=8):
    """Mean over factors of the gap between the two largest normalised histogram MIs of latents."""
    def digitise(x):
        return np.searchsorted(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]), x)

    def mi(a, b):
        joint = np.histogram2d(a, b, bins=bins)[0] / a.size
        outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
        nz = joint > 0
        return float(np.sum(joint[nz] * np.log(joint[nz] / outer[nz])))

    gaps = []
    for f in factors.T:
        fd = digitise(f)
        mis = sorted((mi(digitise(z), fd) for z in latents.T), reverse=True)
        gaps.append((mis[0] - mis[1]) / np.log(bins))
    return float(np.mean(gaps))


def seed_metrics(seed, shuffle=False):
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(400, 2))
    latents = factors @ np.array([[1.0, 0.1], [0.1, 1.0]]) + 0.3 * rng.normal(size=(400, 2))
    if shuffle:
        latents = rng.permutation(latents)
    return metrics_doc({"mig": mig_like(latents, factors)})


def test_planted_drift_shuffled_latents_fails_a_seed_spread_baseline(tmp_path):
    baseline = make_baseline([seed_metrics(seed) for seed in range(5)], {"mig": {"abs": 0.01}}, {"run": "test"})
    entry = baseline["metrics"]["fcae2/sim/mig"]
    assert entry["n_samples"] == 5 and entry["tolerance"]["abs"] >= max(SPREAD_K * entry["std"], 0.01)
    (tmp_path / "good.json").write_text(json.dumps(seed_metrics(7)))
    (tmp_path / "drift.json").write_text(json.dumps(seed_metrics(7, shuffle=True)))
    write_baseline(tmp_path / "baseline.json", baseline)
    assert regress(tmp_path / "good.json", tmp_path / "baseline.json")[1]
    rows, ok = regress(tmp_path / "drift.json", tmp_path / "baseline.json")
    assert not ok and rows[0]["now"] < 0.5 * rows[0]["baseline"]


def test_update_then_regress_round_trip(tmp_path, capsys):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    for model, mig in (("pca", 0.1), ("fcae2", 0.3)):
        (metrics_dir / f"{model}-sim.json").write_text(json.dumps(metrics_doc({"mig": mig, "sap": 0.2}, model)))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("name: t\nregression:\n  baseline: b.json\n  tolerances:\n    mig: {abs: 0.02}\n"
                        "    default: {rel: 0.05}\n")
    baseline_path = tmp_path / "baselines" / "b.json"
    assert main([metrics_dir], baseline_path, update=True, tolerances_path=scenario) == 0
    baseline = json.loads(baseline_path.read_text())
    assert baseline["schema"] == BASELINE_SCHEMA and baseline["source"]["metrics_files"]
    assert baseline["metrics"]["pca/sim/mig"] == {"value": 0.1, "n_samples": 1, "ci_low": 0.1, "ci_high": 0.1,
                                                  "tolerance": {"abs": 0.02}}
    assert baseline["metrics"]["fcae2/sim/sap"]["tolerance"] == {"rel": 0.05}
    assert main([metrics_dir], baseline_path) == 0
    (metrics_dir / "pca-sim.json").write_text(json.dumps(metrics_doc({"mig": 0.13, "sap": 0.2}, "pca")))
    assert main([metrics_dir], baseline_path) == 1
    out = capsys.readouterr().out
    assert "pca/sim/mig" in out and "FAIL" in out and "1 REGRESSED" in out


def test_misspelled_tolerance_names_are_refused_with_the_nearest_metric():
    """A tolerance whose name matches no metric used to fall back silently to the default."""
    doc = metrics_doc({"mig": 0.3, "sap": 0.1})
    with pytest.raises(SimharpsError, match=r"'mgi' matches no metric .*did you mean 'mig'"):
        make_baseline([doc], tolerances={"mgi": {"abs": 0.05}})
    baseline = make_baseline([doc], tolerances={"mig": {"abs": 0.05}, "fcae2/sim/sa*": {"abs": 0.1}})
    assert baseline["metrics"]["fcae2/sim/mig"]["tolerance"] == {"abs": 0.05}


def test_misspelled_model_override_keys_name_their_section():
    from analysis.config import AnalysisConfig

    with pytest.raises(ValueError, match=r"preprocessing: unknown key\(s\) 'reciep' \(did you mean 'recipe'\?\)"):
        AnalysisConfig.model_validate({"models": [{"name": "a", "kind": "pca", "preprocessing": {"reciep": "hits"}}]})
    with pytest.raises(ValueError, match=r"training: unknown key\(s\) 'epoch' \(did you mean 'epochs'\?\)"):
        AnalysisConfig.model_validate({"models": [{"name": "a", "kind": "pca", "training": {"epoch": 3}}]})
