import subprocess
import sys

import pytest

from simharps import __version__
from simharps.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "plot" in capsys.readouterr().out


def test_console_script_is_installed():
    completed = subprocess.run([sys.executable, "-m", "simharps.cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "usage: simharps" in completed.stdout


def test_plot_real_product_writes_png(harps_dir, tmp_path):
    out = tmp_path / "gl581.png"
    assert main(["plot", str(harps_dir / "HARPS.2010-09-18T23:42:36.178_s1d_A.fits"), "--out", str(out),
                 "--window", "6860", "6920"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_bad_file_is_one_clear_message(tmp_path, capsys):
    bogus = tmp_path / "not_a_spectrum.fits"
    bogus.write_text("hello")
    assert main(["plot", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simharps plot: error:") and "not_a_spectrum.fits" in err and "Traceback" not in err


def test_spectrum_writes_adp_and_png_with_truth(tmp_path, capsys):
    from simharps.io import read_harps

    assert main(["spectrum", "teff_k=5000", "vmag=9", "--window", "6270", "6300", "--out", str(tmp_path)]) == 0
    product = read_harps(tmp_path / "spectrum.fits")
    assert product.truth["teff_k"] == 5000.0 and product.truth["vmag"] == 9.0
    assert product.wavelength_air_aa[0] == pytest.approx(6270.0) and product.wavelength_air_aa[-1] == pytest.approx(6300.0)
    assert (tmp_path / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
    assert "BERV" in capsys.readouterr().out


@pytest.mark.parametrize("argument, message", [("airmass=0.5", "airmass"), ("teff", "NAME=VALUE")])
def test_spectrum_bad_parameters_exit_2_with_one_message(tmp_path, capsys, argument, message):
    assert main(["spectrum", argument, "--window", "6270", "6280", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
