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
    candidates = np.flatnonzero(isolated & in_range & (table.depth[g2] > 0.3) & (table.depth[g2] < 0.6))[:5]
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
