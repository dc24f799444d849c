"""Population sampling: determinism, visibility, physical relations, designs."""

import textwrap

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord, get_sun
from astropy.time import Time
from scipy.stats import truncnorm

from simharps.kinematics import _offline_astropy, barycentric_correction, site_location
from simharps.scenario import Scenario, ScenarioError, sample_population, spectrum_seed
from simharps.scenario import distributions as dist
from simharps.scenario.relations import absolute_vmag, main_sequence_logg, reddening_from_distance


def scenario_of(text):
    return Scenario.from_yaml(textwrap.dedent(text))


SMALL = """\
    name: pop
    seed: 99
    observing: {dates: [2006-01-01, 2009-12-31]}
    population:
      n_targets: %d
      epochs_per_target: %d
      per_target:
        dec_deg: {isotropic: [-80 deg, 20 deg]}
    %s
    """


def small(n_targets=4, epochs=3, extra=""):
    return scenario_of(SMALL % (n_targets, epochs, extra))


NUMERIC = ["teff_k", "logg_cgs", "mh_dex", "vsini_kms", "rv_kms", "vmag", "ebv_mag", "ra_deg", "dec_deg", "pwv_mm",
           "seeing_arcsec", "fibre_offset_arcsec", "airmass", "mjd_utc", "berv_kms", "hour_angle_h"]


def assert_same_rows(a, b):
    for name in NUMERIC:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    assert list(a["target_id"]) == list(b["target_id"])


# ------------------------------------------------------------------------------------------ determinism


def test_rows_do_not_change_when_the_population_grows_or_is_chunked():
    full = sample_population(small(4, 3))
    assert len(full) == 12 and list(full["epoch"][:3]) == [0, 1, 2]
    assert_same_rows(sample_population(small(4, 3)), full)
    grown = sample_population(small(7, 3))
    assert_same_rows(grown[:12], full)
    chunks = [sample_population(small(7, 3), targets=range(0, 3)), sample_population(small(7, 3), targets=[3, 4, 5, 6])]
    from astropy.table import vstack

    assert_same_rows(vstack(chunks), grown)
    # more epochs per target: the existing (target, epoch) rows keep their values
    more = sample_population(small(4, 5))
    keep = np.isin(more["epoch"], [0, 1, 2])
    assert_same_rows(more[keep], full)


def test_adding_a_parameter_leaves_the_others_unchanged():
    base = sample_population(small(3, 2))
    more = sample_population(small(3, 2, "  per_epoch: {adr_residual_fraction: {uniform: [0, 0.5]}}"))
    assert_same_rows(more, base)
    assert "adr_residual_fraction" in more.colnames and "adr_residual_fraction" not in base.colnames


def test_another_seed_gives_another_population():
    a = sample_population(small(3, 2))
    b = sample_population(scenario_of((SMALL % (3, 2, "")).replace("seed: 99", "seed: 100")))
    assert not np.any(np.asarray(a["teff_k"]) == np.asarray(b["teff_k"]))


def test_target_parameters_are_constant_across_epochs_and_conditions_vary():
    table = sample_population(small(3, 4))
    for target in table.group_by("target_id").groups:
        for name in ("teff_k", "logg_cgs", "rv_kms", "vmag", "ra_deg", "dec_deg"):
            assert np.ptp(np.asarray(target[name])) == 0.0
        for name in ("pwv_mm", "seeing_arcsec", "mjd_utc", "berv_kms"):
            assert np.ptp(np.asarray(target[name])) > 0.0


# -------------------------------------------------------------------------------------- visibility


def test_observations_are_at_night_below_the_airmass_limit_and_match_astropy():
    scenario = small(6, 4)
    table = sample_population(scenario)
    assert np.all(table["sun_altitude_deg"] < -18.0) and np.all(table["airmass"] <= 2.0)
    assert np.all((table["mjd_utc"] > 53736.0) & (table["mjd_utc"] < 55196.0))
    mid = Time(np.asarray(table["mjd_utc"]) + np.asarray(table["exptime_s"]) / 172800.0, format="mjd", scale="utc")
    with _offline_astropy():
        frame = AltAz(obstime=mid, location=site_location("lasilla"))
        star = SkyCoord(np.asarray(table["ra_deg"]) * u.deg, np.asarray(table["dec_deg"]) * u.deg).transform_to(frame)
        sun = get_sun(mid).transform_to(frame)
    np.testing.assert_allclose(np.asarray(table["airmass"]), 1.0 / np.sin(star.alt.rad), atol=2e-3)
    np.testing.assert_allclose(np.asarray(table["sun_altitude_deg"]), sun.alt.deg, atol=0.02)
    np.testing.assert_allclose(np.asarray(table["berv_kms"]), barycentric_correction(
        np.asarray(table["ra_deg"]), np.asarray(table["dec_deg"]), np.asarray(table["mjd_utc"]),
        np.asarray(table["exptime_s"])), atol=1e-9)


def test_berv_spread_follows_the_ecliptic_geometry():
    """Many epochs over 4 years: a target on the ecliptic sweeps most of +-30 km/s, one at the pole does not."""
    text = (SMALL % (1, 40, "")).replace("dec_deg: {isotropic: [-80 deg, 20 deg]}", "ra_deg: %s\n        dec_deg: %s")
    ecliptic = sample_population(scenario_of(text % ("90 deg", "-20 deg")))   # close to the ecliptic
    pole = sample_population(scenario_of(text % ("90 deg", "-66.56 deg")))   # south ecliptic pole
    assert np.ptp(np.asarray(ecliptic["berv_kms"])) > 30.0
    assert np.max(np.abs(np.asarray(pole["berv_kms"]))) < 1.0


def test_given_airmass_is_reached_at_the_solved_hour_angle():
    table = sample_population(small(3, 4, "  per_epoch: {airmass: {uniform: [1.3, 1.9]}}"))
    airmass = np.asarray(table["airmass"])
    assert np.all((airmass >= 1.3) & (airmass <= 1.9)) and np.all(table["sun_altitude_deg"] < -18.0)
    mid = Time(np.asarray(table["mjd_utc"]) + np.asarray(table["exptime_s"]) / 172800.0, format="mjd", scale="utc")
    with _offline_astropy():
        frame = AltAz(obstime=mid, location=site_location("lasilla"))
        star = SkyCoord(np.asarray(table["ra_deg"]) * u.deg, np.asarray(table["dec_deg"]) * u.deg).transform_to(frame)
    np.testing.assert_allclose(1.0 / np.sin(star.alt.rad), airmass, atol=3e-3)
    assert np.any(table["hour_angle_h"] < 0) and np.any(table["hour_angle_h"] > 0)


def test_unreachable_airmass_names_the_target():
    scenario = small(3, 4, "  per_epoch: {airmass: {choice: [1.01, 1.9]}}")   # passes validation (reach 1.9)
    with pytest.raises(ScenarioError, match="target T0000. at dec .* never gets down to airmass 1.010"):
        sample_population(scenario)


def test_fibre_era_auto_follows_the_date_and_fixed_eras_restrict_dates(monkeypatch):
    """The era sampling, for the day post2015 is simulated (today the schema refuses post-upgrade observations:
    tests/test_parameters.py)."""
    import simharps.scenario.schema as schema

    monkeypatch.setattr(schema, "SIMULATED_FIBRE_ERAS", ("pre2015", "post2015"))
    extra = "  per_epoch: {fibre_era: %s}\n    observing: {dates: [2013-01-01, 2018-01-01]}"
    table = sample_population(scenario_of((SMALL % (3, 6, extra % "auto")).replace(
        "    observing: {dates: [2006-01-01, 2009-12-31]}\n", "")))
    era = np.asarray(table["fibre_era"])
    assert set(era) == {"pre2015", "post2015"}
    assert np.all((era == "pre2015") == (np.asarray(table["mjd_utc"]) < 57174.0))
    table = sample_population(scenario_of((SMALL % (3, 4, extra % "post2015")).replace(
        "    observing: {dates: [2006-01-01, 2009-12-31]}\n", "")))
    assert np.all(table["mjd_utc"] >= 57174.0)


# ---------------------------------------------------------------------------------- physical relations


def test_main_sequence_logg_and_absolute_magnitude_against_known_stars():
    assert main_sequence_logg(5772.0) == pytest.approx(4.438, abs=0.01)   # Sun
    assert absolute_vmag(5772.0) == pytest.approx(4.81, abs=0.05)          # Sun: M_V = 4.81
    assert main_sequence_logg(3480.0) == pytest.approx(4.9, abs=0.1)        # Gl581 (M3V), shared/data README
    assert main_sequence_logg(5713.0) == pytest.approx(4.48, abs=0.1)       # HD41248 (G2V)
    logg = main_sequence_logg(np.linspace(3000.0, 7250.0, 50))
    assert logg[0] > 5.0 and logg[-1] < 4.2                                # M dwarfs denser than F dwarfs


def test_population_relations_are_applied():
    table = sample_population(scenario_of((SMALL % (5, 1, "")).replace("        dec_deg", """        teff_k: {uniform: [4000 K, 6500 K]}
        logg_cgs: main_sequence
        distance_pc: {loguniform: [20 pc, 400 pc]}
        ebv_mag: reddening
        vmag: distance_modulus
        dec_deg""")))
    teff, d = np.asarray(table["teff_k"]), np.asarray(table["distance_pc"])
    np.testing.assert_allclose(table["logg_cgs"], main_sequence_logg(teff))
    np.testing.assert_allclose(table["vmag"], absolute_vmag(teff) + 5 * np.log10(d / 10) + 3.1 * table["ebv_mag"])
    assert np.all(np.asarray(table["ebv_mag"]) <= 0.61 * d / 1000 + 1e-12)


def test_reddening_limits():
    assert reddening_from_distance(500.0, 0.0) == pytest.approx(0.61 * 0.5)          # in the plane: k d
    assert reddening_from_distance(1e5, 90.0) == pytest.approx(0.61 * 0.125)          # pole: k h
    assert reddening_from_distance(60.0, 0.0, bubble_radius_pc=70.0) == 0.0


def test_galactic_kinematics_spread_and_solar_apex():
    rng = np.random.default_rng(0)
    n = 40000
    sky = dist.Isotropic(-90.0, 90.0).ppf(rng.random((n, 4)), {})
    ra = 360.0 * rng.random(n)
    sampler = dist.GalacticKinematics((-9.9, -16.9, -7.1), (32.5, 17.8, 16.5))
    rv = sampler.ppf(rng.random((n, 4)), {"ra_deg": ra, "dec_deg": sky})
    assert np.std(rv) == pytest.approx(26.3, abs=0.6)
    apex = SkyCoord(l=59.6 * u.deg, b=19.9 * u.deg, frame="galactic").icrs
    rv_apex = sampler.ppf(rng.random((n, 4)), {"ra_deg": np.full(n, apex.ra.deg), "dec_deg": np.full(n, apex.dec.deg)})
    assert np.mean(rv_apex) == pytest.approx(-20.8, abs=0.5)   # stars approach from the apex direction


def test_truncated_and_choice_sampling():
    rng = np.random.default_rng(1)
    u01 = rng.random((50000, 4))
    sampler = dist.Truncated(dist.Normal(2.0, 1.0), 0.5, 3.0)
    values = sampler.ppf(u01, {})
    assert values.min() >= 0.5 and values.max() <= 3.0
    assert np.mean(values) == pytest.approx(truncnorm.mean(-1.5, 1.0, loc=2.0), abs=0.01)
    choice = dist.Choice(["HAM", "EGGS"], [3.0, 1.0]).ppf(u01, {})
    assert np.mean(choice == "EGGS") == pytest.approx(0.25, abs=0.01)
    iso = dist.Isotropic(-90.0, 90.0).ppf(u01, {})
    assert np.mean(np.sin(np.radians(iso)) > 0.5) == pytest.approx(0.25, abs=0.01)


# ----------------------------------------------------------------------------------------------- designs


def test_factorial_design_crosses_levels_independently():
    scenario = scenario_of("""\
        name: fact
        seed: 4
        population:
          n_targets: 2
          epochs_per_target: 2
          per_target: {dec_deg: {isotropic: [-50 deg, -10 deg]}}
        design:
          kind: factorial
          factors:
            teff_k: [4500 K, 5500 K]
            airmass: [1.1, 1.6]
            pwv_mm: [1 mm, 8 mm]
            instrument_mode: [HAM, EGGS]
        """)
    table = sample_population(scenario)
    assert len(table) == scenario.n_spectra == 2 * 2 * (2 * 2 * 2) * 2
    cells = {}
    for row in table:
        key = (row["teff_k"], row["airmass"], row["pwv_mm"], row["instrument_mode"])
        cells[key] = cells.get(key, 0) + 1
    assert len(cells) == 16 and set(cells.values()) == {4}
    for target in table.group_by("target_id").groups:   # each star is seen at every condition level
        assert len({(r["airmass"], r["pwv_mm"], r["instrument_mode"]) for r in target}) == 8
        assert np.ptp(np.asarray(target["teff_k"])) == 0.0
    np.testing.assert_allclose(table["logg_cgs"], main_sequence_logg(np.asarray(table["teff_k"])), atol=0.3)


def test_paired_design_variants_differ_in_one_factor_only():
    scenario = small(2, 2, "design: {kind: paired, factor: pwv_mm, values: [1 mm, 10 mm]}")
    table = sample_population(scenario)
    assert len(table) == scenario.n_spectra == 12
    for group in table.group_by("design_group").groups:
        assert list(group["variant"]) == [0, 1, 2]
        assert list(group["pwv_mm"][1:]) == [1.0, 10.0]
        for name in NUMERIC:
            if name != "pwv_mm":
                assert np.ptp(np.asarray(group[name])) == 0.0, name
        seeds = {spectrum_seed(scenario, row).spawn_key for row in group}
        assert len(seeds) == 1                                   # same_noise: one noise realisation per group
    independent = small(2, 2, "design: {kind: paired, factor: pwv_mm, values: [1 mm], same_noise: false}")
    table = sample_population(independent)
    assert len({spectrum_seed(independent, row).spawn_key for row in table}) == len(table)


def test_paired_dates_recompute_berv_only():
    scenario = small(2, 1, "design: {kind: paired, factor: mjd_utc, deltas: [182.6 d]}")
    table = sample_population(scenario)
    base, variant = table[table["variant"] == 0], table[table["variant"] == 1]
    np.testing.assert_allclose(variant["mjd_utc"] - base["mjd_utc"], 182.6)
    np.testing.assert_array_equal(variant["airmass"], base["airmass"])
    np.testing.assert_allclose(variant["berv_kms"], barycentric_correction(
        np.asarray(variant["ra_deg"]), np.asarray(variant["dec_deg"]), np.asarray(variant["mjd_utc"]),
        np.asarray(variant["exptime_s"])))
    assert np.all(np.abs(variant["berv_kms"] - base["berv_kms"]) > 0.1)


def test_out_of_range_variants_fail_after_sampling():
    with pytest.raises(ScenarioError, match=r"\(design\): pwv_mm = -1\d\d.* is outside the range from 0 to 200 mm"):
        sample_population(small(2, 1, "design: {kind: paired, factor: pwv_mm, deltas: [-200 mm]}"))


def test_table_columns_and_units():
    table = sample_population(small(2, 2))
    for name in ("target_id", "epoch", "teff_k", "logg_cgs", "mh_dex", "vsini_kms", "rv_kms", "vmag", "ebv_mag",
                 "rv_dust", "airmass", "pwv_mm", "seeing_arcsec", "fibre_offset_arcsec", "exptime_s", "ra_deg",
                 "dec_deg", "mjd_utc", "berv_kms", "instrument", "site", "hour_angle_h", "parallactic_angle_deg",
                 "design_group", "variant", "instrument_mode", "fibre_era"):
        assert name in table.colnames, name
    assert table["teff_k"].unit == u.K and table["seeing_arcsec"].unit == u.arcsec
    assert set(table["instrument"]) == {"HARPS"} and set(table["site"]) == {"lasilla"}
    assert table.meta["scenario"] == "pop" and table.meta["seed"] == 99
