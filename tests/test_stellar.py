"""Built-in synthesis: output contract, parameter errors, physics trends, and the template grid."""

import numpy as np
import pytest

from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import WORKING_STEP_KMS
from simharps.stellar.continuum import planck_flux
from simharps.stellar.linelist import load_line_table, maximum_depth
from simharps.stellar.spectrum import StellarSpectrum
from simharps.stellar.synthesis import synthesize
from simharps.stellar import templates
from simharps.stellar.templates import TemplateGrid


def band_mean(spectrum, lo, hi, values=None):
    values = spectrum.flux if values is None else values
    sel = (spectrum.wavelength_air_aa > lo) & (spectrum.wavelength_air_aa < hi)
    return float(np.mean(values[sel]))


def test_output_contract():
    s = synthesize(5770, 4.44, 0.0, vsini_kms=2.0, rv_kms=-20.0, window=(5000.0, 5050.0))
    assert isinstance(s, StellarSpectrum)
    assert s.frame == "barycentric" and s.step_kms == WORKING_STEP_KMS
    assert s.flux.dtype == np.float32 and s.continuum.dtype == np.float32
    assert s.wavelength_air_aa[0] <= 5000.0 and s.wavelength_air_aa[-1] >= 5050.0
    steps = np.diff(np.log(s.wavelength_air_aa)) * C_KMS
    np.testing.assert_allclose(steps, WORKING_STEP_KMS, rtol=1e-6)
    assert 0.0 < s.normalised.min() < 0.5 and s.normalised.max() <= 1.0 + 1e-6
    other = synthesize(5770, 4.44, 0.0, window=(5025.0, 5080.0))
    # windows are cut from one lattice: common wavelengths coincide exactly
    common = np.intersect1d(s.wavelength_air_aa, other.wavelength_air_aa)
    assert len(common) > 0.4 * len(other.wavelength_air_aa)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"teff_k": 2500}, "3000-7250"), ({"teff_k": 8000}, "3000-7250"), ({"teff_k": 5000, "logg_cgs": 6.5}, "logg_cgs"),
     ({"teff_k": 5000, "mh_dex": 2.0}, "mh_dex"), ({"teff_k": 5000, "vsini_kms": -1}, "vsini_kms"),
     ({"teff_k": 5000, "window": (3000.0, 4000.0)}, "window")],
)
def test_parameter_errors_name_the_range(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        synthesize(**kwargs)


def test_doppler_shift_is_relativistic():
    rest = synthesize(5770, 4.44, 0.0, vmac_kms=0.0, window=(5100.0, 5110.0))
    moved = synthesize(5770, 4.44, 0.0, vmac_kms=0.0, rv_kms=100.0, window=(5100.0, 5110.0))
    factor = np.sqrt((1 + 100 / C_KMS) / (1 - 100 / C_KMS))
    shift_px = np.log(factor) * C_KMS / WORKING_STEP_KMS
    i_rest = np.argmin(rest.normalised[:2000])
    # the deepest line moved by the relativistic factor (to within one pixel) on the same lattice
    expected = rest.wavelength_air_aa[i_rest] * factor
    i_moved = np.argmin(np.abs(moved.wavelength_air_aa - expected))
    window = moved.normalised[i_moved - 3 : i_moved + 4]
    assert np.argmin(window) == 3
    assert moved.normalised[i_moved] == pytest.approx(rest.normalised[i_rest], abs=2e-3)
    assert shift_px == pytest.approx(667.1, abs=0.5)


def equivalent_width(spectrum, centre, half_width_aa):
    sel = np.abs(spectrum.wavelength_air_aa - centre) < half_width_aa
    return float(np.sum(1 - spectrum.normalised[sel]) * np.mean(np.diff(spectrum.wavelength_air_aa[sel])))


def test_curve_of_growth_with_metallicity():
    table = load_line_table()
    g2 = list(table.spectral_types).index("G2")
    fe1 = table.species_names[table.species_index] == "Fe 1"
    isolated = np.r_[np.inf, np.diff(table.wavelength_air_aa)] > 0.4
    isolated &= np.r_[np.diff(table.wavelength_air_aa), np.inf] > 0.4
    in_range = (table.wavelength_air_aa > 4800) & (table.wavelength_air_aa < 6600)
    weak = np.flatnonzero(fe1 & isolated & in_range & (table.depth[g2] > 0.15) & (table.depth[g2] < 0.3))[0]
    strong = np.flatnonzero(fe1 & isolated & in_range & (table.depth[g2] > 0.85))[0]
    widths = {}
    for mh in (-1.0, -0.5, 0.0, 0.5):
        for label, index in (("weak", weak), ("strong", strong)):
            centre = table.wavelength_air_aa[index]
            s = synthesize(5770, 4.44, mh, vmac_kms=0.0, window=(centre - 2.0, centre + 2.0))
            widths[label, mh] = equivalent_width(s, centre, 0.35)
    for label in ("weak", "strong"):
        series = [widths[label, mh] for mh in (-1.0, -0.5, 0.0, 0.5)]
        assert np.all(np.diff(series) > 0), (label, series)
    weak_growth = widths["weak", 0.5] / widths["weak", 0.0]
    strong_growth = widths["strong", 0.5] / widths["strong", 0.0]
    assert 2.0 < weak_growth < 10**0.5 * 1.01  # nearly linear: up to x3.16 for +0.5 dex
    assert strong_growth < 0.7 * weak_growth  # saturated: slower (damping-wing regime ~ sqrt)


def test_maximum_depth_trends_and_saturated_core():
    # Planck contrast: cores of opaque lines are deeper in cool stars and in the blue
    assert maximum_depth(5200.0, 3500.0) > maximum_depth(5200.0, 5770.0) > maximum_depth(5200.0, 7000.0)
    assert maximum_depth(4200.0, 5770.0) > maximum_depth(6500.0, 5770.0)
    assert 0.85 < maximum_depth(5200.0, 5770.0) < 0.97
    # the Mg b 5183.6 A core (eta_0 >> 1) saturates at 1 - A_c, not at zero flux
    s = synthesize(5770, 4.44, 0.0, vmac_kms=0.0, window=(5182.0, 5185.0))
    assert s.normalised.min() == pytest.approx(1.0 - maximum_depth(5183.6, 5770.0), abs=0.01)


def test_isolated_line_depth_inverts_the_table():
    # unbroadened, at the G2 type's own Teff/logg: an isolated moderate line returns its tabulated depth
    table = load_line_table()
    g2 = list(table.spectral_types).index("G2")
    isolated = np.r_[np.inf, np.diff(table.wavelength_air_aa)] > 0.6
    isolated &= np.r_[np.diff(table.wavelength_air_aa), np.inf] > 0.6
    in_range = (table.wavelength_air_aa > 5000) & (table.wavelength_air_aa < 6400)
    uncorrected = table.loggf_correction_dex == 0        # astrophysical log gf corrections move a line off its depth
    candidates = np.flatnonzero(isolated & in_range & uncorrected & (table.depth[g2] > 0.3) & (table.depth[g2] < 0.6))
    candidates = candidates[:5]
    assert len(candidates) == 5
    for index in candidates:
        centre = table.wavelength_air_aa[index]
        s = synthesize(table.teff_type_k[g2], table.logg_type_cgs[g2], 0.0, vmic_kms=1.0, vmac_kms=0.0,
                       window=(centre - 0.5, centre + 0.5))
        assert 1.0 - s.normalised.min() == pytest.approx(table.depth[g2, index], abs=0.02), centre


def test_mg_b_wings_widen_with_logg():
    # mean absorption 0.6-2.5 A from the Mg b 5183.6 A centre, in the pressure-broadened wing
    wing = []
    for logg in (4.0, 4.5, 5.0):
        s = synthesize(5770, logg, 0.0, vmac_kms=0.0, window=(5175.0, 5192.0))
        offset = np.abs(s.wavelength_air_aa - 5183.60)
        sel = (offset > 0.6) & (offset < 2.5)
        wing.append(float(np.mean(1 - s.normalised[sel])))
    assert wing[0] < wing[1] < wing[2]
    assert wing[2] > 1.3 * wing[0]


def test_ion_lines_weaken_with_gravity():
    table = load_line_table()
    fe2 = table.species_names[table.species_index] == "Fe 2"
    g2 = list(table.spectral_types).index("G2")
    index = np.flatnonzero(fe2 & (table.wavelength_air_aa > 5000) & (table.depth[g2] > 0.3) & (table.depth[g2] < 0.6))[0]
    centre = table.wavelength_air_aa[index]
    widths = [equivalent_width(synthesize(5770, g, 0.0, vmac_kms=0.0, window=(centre - 1, centre + 1)), centre, 0.2)
              for g in (4.0, 5.0)]
    assert widths[0] > widths[1]


def test_balmer_wings_track_teff_not_logg():
    def h_alpha_wing(teff, logg):
        s = synthesize(teff, logg, 0.0, window=(6530.0, 6600.0))
        offset = np.abs(s.wavelength_air_aa - 6562.80)
        sel = (offset > 3.0) & (offset < 12.0)
        return float(np.median(1 - s.normalised[sel]))

    cool, hot = h_alpha_wing(5500, 4.5), h_alpha_wing(6000, 4.5)
    low_g, high_g = h_alpha_wing(5750, 4.0), h_alpha_wing(5750, 5.0)
    assert hot > 1.5 * cool
    assert abs(high_g - low_g) < 0.25 * (hot - cool)


def test_continuum_shape_and_blanketing():
    colours = []
    for teff in (4500, 5800, 7000):
        s = synthesize(teff, 4.5, 0.0, window=(3900.0, 6700.0))
        blue, red = band_mean(s, 3950, 4150), band_mean(s, 6400, 6600)
        colours.append(blue / red)
        bb = planck_flux(np.array([4050.0, 6500.0]), teff)
        # lines block the blue far more than the red: bluer-than-red ratio below the blackbody's
        assert blue / red < 0.95 * bb[0] / bb[1]
        # backwarming: the line-free continuum is hotter than Teff
        assert s.params["continuum_temperature_k"] > teff
    assert colours[0] < colours[1] < colours[2]


def test_template_grid_matches_direct_synthesis(tmp_path):
    grid = TemplateGrid(teff_nodes_k=[5750.0, 6000.0], logg_nodes_cgs=[4.5, 5.0], mh_nodes_dex=[0.0, 0.5],
                        cache_dir=tmp_path)
    window = (5000.0, 5200.0)
    star = grid.spectrum(5750.0, 4.5, 0.0, vsini_kms=4.0, rv_kms=31.7, window=window)
    direct = synthesize(5750.0, 4.5, 0.0, vsini_kms=4.0, rv_kms=31.7, window=window)
    np.testing.assert_array_equal(star.wavelength_air_aa, direct.wavelength_air_aa)
    assert np.max(np.abs(star.normalised - direct.normalised)) < 2e-3
    assert star.params["continuum_temperature_k"] == pytest.approx(direct.params["continuum_temperature_k"], rel=1e-9)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    reloaded = TemplateGrid(teff_nodes_k=[5750.0, 6000.0], logg_nodes_cgs=[4.5, 5.0], mh_nodes_dex=[0.0, 0.5],
                            cache_dir=tmp_path)
    again = reloaded.spectrum(5750.0, 4.5, 0.0, vsini_kms=4.0, rv_kms=31.7, window=window)
    np.testing.assert_array_equal(again.flux, star.flux)
    with pytest.raises(ParameterError, match="template grid"):
        grid.spectrum(5500.0, 4.5, 0.0)


def test_template_grid_lists_and_builds_the_nodes_a_population_needs(tmp_path):
    grid = TemplateGrid(teff_nodes_k=[5750.0, 6000.0], logg_nodes_cgs=[4.5, 5.0], mh_nodes_dex=[0.0, 0.5],
                        cache_dir=tmp_path)
    stars = [(5750.0, 4.5, 0.0), (5750.0, 4.5, 0.25)]  # a node, and a star between two [M/H] nodes
    assert grid.missing(stars) == [(5750.0, 4.5, 0.0), (5750.0, 4.5, 0.5)]
    grid.build(grid.missing(stars), workers=2)  # two spawned processes, one node each
    assert grid.missing(stars) == []
    assert len(list(tmp_path.glob("*.npy"))) == 2
    again = TemplateGrid(teff_nodes_k=[5750.0, 6000.0], logg_nodes_cgs=[4.5, 5.0], mh_nodes_dex=[0.0, 0.5],
                         cache_dir=tmp_path)
    np.testing.assert_array_equal(again.template(5750.0, 4.5, 0.0)[0], grid.build_template(5750.0, 4.5, 0.0)[0])


def test_template_cache_key_follows_synthesis_sources_and_data(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMHARPS_CACHE", str(tmp_path))
    inputs = templates.synthesis_inputs()
    assert [name for name, _ in inputs] == list(templates.SYNTHESIS_MODULES + templates.SYNTHESIS_DATA)
    assert templates.inputs_hash(inputs) == templates.inputs_hash(templates.synthesis_inputs())  # same inputs
    assert templates.synthesis_hash() == templates.inputs_hash(inputs)
    grid = TemplateGrid()
    assert grid.cache_dir == tmp_path / "stellar_templates" / f"synth-{templates.synthesis_hash()}_step0.15_vmic1"
    for changed in range(len(inputs)):  # one more byte in any source or data file gives another key
        edited = [(name, data + b" " if i == changed else data) for i, (name, data) in enumerate(inputs)]
        assert templates.inputs_hash(edited) != templates.inputs_hash(inputs)
    edited_synthesis = [(name, data.replace(b"def normalised_lines", b"def normalised_lines ")) for name, data in inputs]
    monkeypatch.setattr(templates, "synthesis_inputs", lambda: edited_synthesis)
    templates.synthesis_hash.cache_clear()
    try:
        assert TemplateGrid().cache_dir.name != grid.cache_dir.name
    finally:
        templates.synthesis_hash.cache_clear()


# --- weak-line forest, ionisation / dissociation model, molecular lines ------------------------------------------

def test_forest_table_is_small_derived_and_guarded():
    import hashlib
    from importlib import resources

    from simharps.stellar import linelist

    data = resources.files("simharps.data").joinpath("stellar_forest.npz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == linelist.FOREST_TABLE_SHA256
    assert len(data) < 5e6
    assert resources.files("simharps.data").joinpath("stellar_forest.md").is_file()
    table = load_line_table()
    base = load_line_table(forest=False)
    assert table.forest.sum() > 100_000 and not base.forest.any()
    np.testing.assert_array_equal(table.wavelength_air_aa[~table.forest], base.wavelength_air_aa)
    names = set(table.species_names[table.species_index[table.forest]])
    assert {"TiO 1", "CaH 1", "MgH 1", "CH 1", "CN 1", "Fe 1", "Ti 1"} <= names
    # every forest line reaches a central depth of 0.005 for some dwarf type
    eta = 10.0 ** table.log_eta_type[:, table.forest].astype(float)
    depth = maximum_depth(table.wavelength_air_aa[table.forest][None, :], table.teff_type_k[:, None]) * eta / (1 + eta)
    assert depth.max(axis=0).min() > 0.0049


def test_saha_and_dissociation_equilibrium():
    from simharps.stellar.linelist import chemical_equilibrium, ionisation_fractions, photosphere_state

    # iron: mostly ionised in the solar line-forming layer, mostly neutral in an M dwarf's
    t_sun, _, ne_sun = photosphere_state(5772.0, 4.44)
    t_m, _, ne_m = photosphere_state(3400.0, 4.9)
    assert ionisation_fractions("Fe", t_sun, ne_sun)[1] > 0.5
    assert ionisation_fractions("Fe", t_m, ne_m)[0] > 0.9
    assert sum(ionisation_fractions("Ca", 5000.0, 1e12)) == pytest.approx(1.0)
    # molecules: H2 and CO form in the cool layer, not in the hot one; carbon is locked in CO when O > C
    hot_layer, cool_layer = photosphere_state(6500.0, 4.3), photosphere_state(3200.0, 5.0)
    hot, cool = chemical_equilibrium(*hot_layer), chemical_equilibrium(*cool_layer)
    free_h = {name: 10 ** (free["H"] - np.log10(layer[1])) for name, free, layer in
              (("hot", hot, hot_layer), ("cool", cool, cool_layer))}
    assert free_h["hot"] > 0.99 and free_h["cool"] < 0.7  # H2 takes a good part of the hydrogen in the M dwarf
    free_c = 10 ** (cool["C"] - (np.log10(cool_layer[1]) + 8.43 - 12))
    assert free_c < 0.01  # carbon locked in CO


def test_logg_scaling_follows_the_population_model():
    table = load_line_table(forest=False)
    names = list(table.species_names)
    at_g2 = table.logg_correction(5770.0, 3.45)  # one dex below the dwarf sequence
    # Fe mostly ionised at G2: Fe II lines ~ g^(-1/3) (stronger at low g), Fe I ~ g^0
    assert at_g2[names.index("Fe 2")] == pytest.approx(1.0 / 3.0, abs=0.1)
    assert abs(at_g2[names.index("Fe 1")]) < 0.1
    # molecules weaken at low gravity
    assert at_g2[names.index("MgH 1")] < -0.1
    assert np.all(table.logg_correction(5770.0, table.reference_logg_at(5770.0)) == 0.0)


def test_relation_reproduces_the_depth_table_and_extrapolates_molecules():
    table = load_line_table()
    names = list(table.species_names)
    # the population model describes the calibrated offsets of the VALD tables to a few tenths of a dex
    assert table.model_residual_dex < 0.4
    assert np.all(np.diff(table.theta_exc) > -0.05)  # cooler types: higher 5040/T_exc
    # TiO: calibrated in the M tables, predicted (and vanishing) toward the K and G types
    tio = names.index("TiO 1")
    m2, k5, g2 = (list(table.spectral_types).index(t) for t in ("M2", "K5", "G2"))
    assert table.species_calibrated[m2, tio] and not table.species_calibrated[g2, tio]
    assert table.species_offset[m2, tio] > table.species_offset[k5, tio] + 1.5 > table.species_offset[g2, tio] + 3


def test_forest_class_evaluation_matches_line_by_line_voigt_profiles():
    from scipy.special import voigt_profile

    from simharps.stellar.lines import _class_opacity, _half_width_kms, line_parameters

    params = line_parameters(3500.0, 5.0, 0.0, 1.0)
    ln_wave = np.log(6000.0) + np.arange(30000) * WORKING_STEP_KMS / C_KMS
    centre = (np.log(params.wavelength_air_aa) - ln_wave[0]) / (WORKING_STEP_KMS / C_KMS)
    pick = np.flatnonzero(params.forest & (centre > 0) & (centre < 30000) & (params.eta0 > 2e-4))
    pick = np.random.default_rng(1).choice(pick, min(2000, pick.size), replace=False)
    fast = _class_opacity(np.zeros(30000), centre[pick], params.eta0[pick], params.sigma_kms[pick],
                          params.gamma_kms[pick], WORKING_STEP_KMS)
    exact = np.zeros(30000)
    for i in pick:
        half = int(_half_width_kms(params.eta0[i], params.sigma_kms[i], params.gamma_kms[i]) / WORKING_STEP_KMS) + 2
        lo, hi = max(int(centre[i]) - half, 0), min(int(centre[i]) + half, 30000)
        v = (np.arange(lo, hi) - centre[i]) * WORKING_STEP_KMS
        exact[lo:hi] += params.eta0[i] * voigt_profile(v, params.sigma_kms[i], params.gamma_kms[i]) / voigt_profile(
            0.0, params.sigma_kms[i], params.gamma_kms[i])
    flux_fast, flux_exact = 1 / (1 + fast), 1 / (1 + exact)
    assert np.max(np.abs(flux_fast - flux_exact)) < 0.01
    assert np.sqrt(np.mean((flux_fast - flux_exact) ** 2)) < 1e-3
    # opacity area conserved (the class kernel reaches further into the wings than each line's own window)
    assert fast.sum() == pytest.approx(exact.sum(), rel=0.02)


def test_equivalent_widths_follow_the_voigt_curve_of_growth():
    from scipy.special import voigt_profile

    from simharps.stellar.continuum import equivalent_widths_kms

    sigma, gamma = 1.0, 0.3
    eta0 = np.logspace(-3, 4, 50)
    width = equivalent_widths_kms(eta0, sigma, gamma, 1.0)
    area = eta0 / voigt_profile(0.0, sigma, gamma)
    assert width[0] == pytest.approx(area[0], rel=0.01)  # weak lines: linear
    assert np.all(np.diff(width) > 0) and np.all(width <= area * 1.0001)
    strong = np.pi * np.sqrt(area * gamma / np.pi)  # damping part: square root
    assert width[-1] == pytest.approx(strong[-1], rel=0.1)
    # exact integral of eta / (1 + eta) for a moderate line
    v = np.linspace(-400, 400, 400001)
    for e in (0.3, 3.0, 30.0):
        profile = e * voigt_profile(v, sigma, gamma) / voigt_profile(0.0, sigma, gamma)
        exact = np.trapezoid(profile / (1 + profile), v)
        # Rodgers & Williams (1974): a few per cent, at most ~8 % in the transition from linear to saturated
        assert equivalent_widths_kms(np.array([e]), sigma, gamma, 1.0)[0] == pytest.approx(exact, rel=0.1)


def test_blanketing_saturates_at_the_maximum_depth():
    from simharps.stellar.continuum import blanketing_coefficient

    edges = np.array([5000.0, 5050.0, 5100.0])
    no_balmer = lambda w: np.zeros_like(w)  # noqa: E731
    sparse = blanketing_coefficient(edges, np.array([5010.0, 5060.0]), np.array([0.05, 0.05]), no_balmer, [0.9, 0.9])
    np.testing.assert_allclose(sparse, 0.05 / 50.0, rtol=1e-3)
    dense = blanketing_coefficient(edges, np.full(1000, 5020.0), np.full(1000, 0.5), no_balmer, [0.9, 0.9])
    assert dense[0] == pytest.approx(0.9, rel=1e-4) and dense[1] == 0.0


def test_weak_line_forest_adds_lines_and_blanketing_to_a_g_dwarf():
    from simharps.stellar.lines import line_parameters
    from simharps.stellar.synthesis import continuum_temperature, lattice_wavelengths, lattice_indices, normalised_lines

    first, last = lattice_indices(5000.0, 5100.0)
    wave = lattice_wavelengths(first, last)
    counts, temperatures = [], []
    for table in (load_line_table(forest=False), load_line_table()):
        params = line_parameters(5770.0, 4.44, 0.0, 1.0, table=table)
        flux = normalised_lines(np.log(wave), WORKING_STEP_KMS, 5770.0, 4.44, params)
        depth = 1 - flux
        minima = (depth[1:-1] > depth[:-2]) & (depth[1:-1] >= depth[2:]) & (depth[1:-1] > 0.01)
        counts.append(int(minima.sum()))
        temperatures.append(continuum_temperature(5770.0, 4.44, params))
    assert counts[1] > 1.15 * counts[0]
    assert temperatures[1] > temperatures[0] > 5770.0


def test_molecular_bands_appear_in_m_dwarfs_only():
    def head_ratio(teff):
        s = synthesize(teff, 4.8 if teff < 4000 else 4.5, 0.0, window=(6635.0, 6665.0))
        red = (s.wavelength_air_aa > 6652) & (s.wavelength_air_aa < 6662)
        blue = (s.wavelength_air_aa > 6640) & (s.wavelength_air_aa < 6650)
        return float(np.mean(s.normalised[red]) / np.mean(s.normalised[blue]))

    ratios = [head_ratio(t) for t in (5770.0, 4500.0, 3800.0, 3300.0)]
    # TiO 6651 A: no band head in G and mid-K dwarfs, deepening through the M dwarfs
    assert abs(ratios[0] - 1) < 0.03 and abs(ratios[1] - 1) < 0.03
    assert ratios[1] > ratios[2] > ratios[3]
    assert ratios[3] < 0.9
