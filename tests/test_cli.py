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
