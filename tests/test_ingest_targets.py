"""Target grouping by sky position (proper-motion aware) and name, epochs, and the literature-label join."""

import numpy as np
import pytest
from astropy.io import fits

from simharps.errors import ParameterError
from simharps.ingest.targets import assign_targets, join_labels, normalise_name, target_position


@pytest.mark.parametrize("a,b", [("GJ 581", "Gl581"), ("gl_581", "GJ581"), ("GJ0581", "Gliese 581"),
                                 ("HD 41248", "hd41248")])
def test_names_normalise_alike(a, b):
    assert normalise_name(a) == normalise_name(b) != ""


def test_different_names_stay_different():
    assert normalise_name("HIP 74995") != normalise_name("GJ 581")
    assert normalise_name("BD-08 4352") != normalise_name("BD+08 4352")
    assert normalise_name(None) == ""


def _row(name, ra, dec, mjd, path):
    return {"object": name, "target_ra_deg": ra, "target_dec_deg": dec, "mjd_utc": mjd, "path": path}


def test_groups_by_position_within_tolerance_and_orders_epochs_by_time():
    arcsec = 1.0 / 3600.0
    rows = [
        _row("GJ581", 229.8618, -7.7223, 55460.0, "c"),
        _row("HIP74995", 229.8618 + 4 * arcsec, -7.7223, 55400.0, "a"),  # other name, 4" away: same star
        _row("GJ 581", 229.8618, -7.7223 + 15 * arcsec, 55500.0, "d"),   # same name, 15": linked by name (< 120")
        _row("HD41248", 90.1367, -56.1618, 58430.0, "b"),
        _row("HD41248", 90.1367, -56.1618 + 1.0, 58431.0, "e"),           # same name but 1 deg away: another target
        _row("Gl581", None, None, 55450.0, "f"),                          # no position: joins its name
    ]
    assign_targets(rows, tolerance_arcsec=10.0)
    ids = [row["target_id"] for row in rows]
    assert ids[0] == ids[1] == ids[2] == ids[5] == "GJ581"
    assert ids[3] != ids[4] and {ids[3], ids[4]} == {"HD41248", "HD41248#2"}
    epochs = {row["path"]: row["epoch"] for row in rows if row["target_id"] == "GJ581"}
    assert epochs == {"a": 0, "f": 1, "c": 2, "d": 3}


def test_position_tolerance_separates_neighbours():
    arcsec = 1.0 / 3600.0
    rows = [_row("A", 10.0, 20.0, 1.0, "1"), _row("B", 10.0, 20.0 + 12 * arcsec, 2.0, "2")]
    assign_targets(rows, tolerance_arcsec=10.0)
    assert rows[0]["target_id"] != rows[1]["target_id"]
    assign_targets(rows, tolerance_arcsec=15.0)
    assert rows[0]["target_id"] == rows[1]["target_id"]


def test_catalogue_position_uses_proper_motion(harps_dir):
    header = fits.getheader(harps_dir / "HARPS.2010-09-18T23:42:36.178_s1d_A.fits")
    position = target_position(header, {})
    assert position["coord_source"] == "catalogue"
    assert position["target_ra_deg"] == pytest.approx(15 * (15 + 19 / 60 + 26.82 / 3600), abs=1e-9)
    assert position["pm_ra_cosdec_masyr"] == pytest.approx(-1224.55)
    moved = header.copy()
    moved["HIERARCH ESO TEL TARG EPOCH"] = 2010.0        # same numbers given at 2010: 10 yr of motion back to J2000
    back = target_position(moved, {})
    dra = (back["target_ra_deg"] - position["target_ra_deg"]) * 3600 * np.cos(np.radians(position["target_dec_deg"]))
    ddec = (back["target_dec_deg"] - position["target_dec_deg"]) * 3600
    assert dra == pytest.approx(12.2455, abs=1e-3) and ddec == pytest.approx(0.9952, abs=1e-3)
    # without catalogue keywords the pointing position is used
    assert target_position(fits.Header(), {"ra_deg": 1.0, "dec_deg": 2.0})["coord_source"] == "pointing"


def test_labels_join_by_normalised_name(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("name,teff,logg,[Fe/H]\nGl 581,3480,4.9,-0.1\nHD 41248,5713,4.48,-0.37\n")
    rows = [_row("GJ581", 229.86, -7.72, 1.0, "a"), _row("HIP74995", 229.86, -7.72, 2.0, "b"),
            _row("IC4651No9122", 261.2, -49.9, 3.0, "c")]
    assign_targets(rows)
    join_labels(rows, csv_path)
    assert rows[0]["teff_k"] == rows[1]["teff_k"] == 3480.0 and rows[1]["mh_dex"] == -0.1
    assert rows[1]["label_name"] == "Gl 581"
    assert rows[2]["teff_k"] is None and rows[2]["label_name"] is None


def test_bad_labels_csv_raises_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,teff\nGl 581,hot\n")
    with pytest.raises(ParameterError, match="line 2: teff"):
        join_labels([], bad)
    nameless = tmp_path / "nameless.csv"
    nameless.write_text("teff,logg\n3480,4.9\n")
    with pytest.raises(ParameterError, match="name column"):
        join_labels([], nameless)
