"""The stellar-model interface: the built-in synthesis and a PHOENIX grid (files in the Husser et al. 2013 layout)
both feed the same chain; ``stellar_model: phoenix`` works end to end from a scenario."""

import numpy as np
import pytest
from astropy.io import fits

from simharps.cli import main
from simharps.constants import C_KMS
from simharps.dataset import open_dataset
from simharps.forward import Simulator, default_stellar_model
from simharps.grids import vacuum_to_air
from simharps.reference import reference_simulate
from simharps.stellar.continuum import planck_flux
from simharps.stellar.model import GridStellarModel
from simharps.stellar.phoenix import WAVE_FILENAME, GridPoint, phoenix_filename
from simharps.stellar.synthesis import lattice_wavelengths

LINE_VAC_AA = 5051.0
"""A planted line (vacuum, rest frame); the chain must put it at its air wavelength times the Doppler factors."""
POINTS = [GridPoint(t, g, z, 0.0) for t in (5700.0, 5800.0) for g in (4.0, 4.5) for z in (-0.5, 0.0)]
STAR = dict(teff_k=5750.0, logg_cgs=4.3, mh_dex=-0.2, vsini_kms=2.0, vmac_kms=1.0, rv_kms=30.0, vmag=7.0,
            exptime_s=300.0, airmass=1.2, pwv_mm=2.0, berv_kms=-10.0)
WINDOW = (5030.0, 5090.0)


def _flux_per_cm(wave_vac_aa, teff_k, logg_cgs, mh_dex):
    """A Planck continuum times one Gaussian line whose depth grows with [M/H] (erg/s/cm^2/cm, as PHOENIX)."""
    depth = 0.5 + 0.2 * mh_dex - 0.05 * (logg_cgs - 4.5)
    line = 1.0 - depth * np.exp(-0.5 * ((wave_vac_aa - LINE_VAC_AA) / 0.08) ** 2)
    return planck_flux(wave_vac_aa, teff_k) * 1e8 * line


@pytest.fixture(scope="module")
def phoenix_dir(tmp_path_factory):
    """Eight grid files (R = 200,000 sampling, 4600-7050 A vacuum) in Z-folders, with the wavelength file."""
    directory = tmp_path_factory.mktemp("phoenix")
    wave = 4600.0 * np.exp(np.arange(int(np.log(7050.0 / 4600.0) * 200_000)) / 200_000)
    fits.writeto(directory / WAVE_FILENAME, wave)
    for point in POINTS:
        path = directory / phoenix_filename(*point)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = fits.Header()
        header["BUNIT"] = "erg/s/cm^2/cm"
        header["PHXTEFF"], header["PHXLOGG"], header["PHXM_H"], header["PHXALPHA"] = point
        fits.writeto(path, _flux_per_cm(wave, *point[:3]).astype(np.float32), header)
    return directory


def test_builtin_model_is_the_template_grid_with_its_planck_continuum():
    model = default_stellar_model()
    first = model.templates.first + 1000
    lines, continuum = model.rest_spectrum(5630.0, 4.3, -0.2, first, first + 500)
    expected, ratio = model.templates.interpolate(5630.0, 4.3, -0.2, slice(1000, 1500))
    np.testing.assert_array_equal(lines, expected)
    wave = lattice_wavelengths(first, first + 10)
    np.testing.assert_allclose(continuum(wave), planck_flux(wave, ratio * 5630.0))


def test_phoenix_star_through_the_chain_puts_its_line_where_it_belongs(phoenix_dir):
    simulator = Simulator(GridStellarModel.phoenix(phoenix_dir))
    sim = simulator.simulate(STAR, seed=0, components=True, window=WINDOW, stages={"noise": False})
    assert sim.truth["stellar_model"] == "phoenix"
    stellar = sim.components["stellar"]
    observed = vacuum_to_air(np.array([LINE_VAC_AA]))[0] * (1 + STAR["rv_kms"] / C_KMS)
    centre = sim.wavelength_air_aa[np.argmin(stellar)]
    assert abs(centre - observed) < 0.015          # 0.01 A bins; the shift is 0.5 A
    assert 0.2 < stellar.min() < 0.7               # depth ~0.4 after the LSF
    # the same model through the reference composition (a PHOENIX model on both engines)
    reference = reference_simulate(STAR, window=WINDOW, simulator=simulator, stages={"noise": False})
    continuum = np.nanmedian(reference.components["response"])
    assert np.nanmax(np.abs(sim.flux - reference.flux)) < 1.5e-4 * continuum


def test_scenario_with_stellar_model_phoenix_runs_end_to_end(phoenix_dir, tmp_path, capsys):
    scenario = tmp_path / "phoenix.yaml"
    scenario.write_text(f"""name: phoenix_e2e
seed: 3
stellar_model: phoenix
phoenix_dir: {phoenix_dir}
observing: {{dates: [2009-01-01, 2010-12-31]}}
population:
  n_targets: 2
  epochs_per_target: 1
  per_target:
    teff_k: {{uniform: [5710 K, 5790 K]}}
    logg_cgs: {{uniform: [4.1 dex, 4.4 dex]}}
    mh_dex: {{uniform: [-0.4 dex, -0.1 dex]}}
    vmag: 7 mag
    dec_deg: {{isotropic: [-70 deg, 10 deg]}}
  per_epoch:
    exptime_s: 300 s
output:
  window: [{WINDOW[0]} A, {WINDOW[1]} A]
  components: true
""")
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "data"), "--quiet"]) == 0
    dataset = open_dataset(tmp_path / "data")
    assert not np.any(dataset.table["failed"])
    assert list(dataset.table["stellar_model"]) == ["phoenix", "phoenix"]
    assert np.nanmin(dataset.components["stellar"][0]) < 0.7   # the planted line


def test_missing_phoenix_dir_is_one_clear_error(tmp_path, capsys):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("""name: bad
seed: 1
stellar_model: phoenix
phoenix_dir: no_such_folder
population: {n_targets: 1, epochs_per_target: 1, per_target: {vmag: 7 mag}}
output: {window: [5030 A, 5090 A]}
""")
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "data"), "--quiet"]) == 2
    assert "no_such_folder is not a directory" in capsys.readouterr().err
