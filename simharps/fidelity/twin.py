"""Simulated twins of real spectra: each real spectrum re-simulated under its own header conditions.

A twin takes from the real spectrum's dataset row (header metadata under the contract names, docs/ingest.md):
``berv_kms`` (the header's classical DRS BERV, passed as is, so the twin's tellurics and instrument features sit
exactly where the real ones do), ``airmass`` (the header's start value, simulated as if mid-exposure),
``exptime_s``, ``mjd_utc``, ``ra_deg``, ``dec_deg``, ``pwv_mm`` (fitted at ingest, else the site default),
``seeing_arcsec`` (the header's start value where positive; DRS headers write -1 when not recorded, then the
forward model's default 1.0"), ``read_noise_e`` and ``gain_e_per_adu``; and ``rv_kms`` (the CCF velocity measured
at ingest, else the label's). The ingest CCF velocity is in the zero point of the HARPS DRS masks, whose line
positions are not the laboratory wavelengths of the simulator's lines (the G2 mask sits +0.20 km/s from VALD,
median): ``simulate_twins`` therefore measures the simulator's own CCF zero point for each star
(``ccf_zero_point_kms``: a noiseless full-range twin at a known velocity, measured with the mask the real row was
measured with) and adds it, so twin and real lines sit at the same wavelengths. The star comes from a labels
CSV::

    target,teff_k,logg_cgs,mh_dex,vsini_kms,vmag,rv_kms
    HD128621,5231,4.53,0.22,1.0,1.33,

(name column ``name``/``target``/``object``/``star``/``target_id``, names normalised as in
``simharps.ingest.targets.normalise_name``; ``teff_k`` and ``vmag`` required, the others optional). A row matches
through its ``object``, ``target_id`` or ``target_name``.

Twin ``i`` uses ``numpy.random.SeedSequence(seed, spawn_key=(i, copy))``: copy 0 is the twin, copy 1 a second
noise draw of the same conditions (for the noise texture, ``simharps.fidelity.noise``).

Example
-------
>>> labels = read_star_labels("labels.csv")
>>> params, sources = twin_parameters(dataset.table[0], labels)
>>> twins = simulate_twins(dataset.table, labels, window=(6000.0, 6300.0), seed=13)
"""

import math
from dataclasses import dataclass, field

import numpy as np

from simharps.errors import ParameterError, SimharpsError
from simharps.forward import simulate
from simharps.ingest.masks import MASK_NAMES, measure_stellar_rv
from simharps.ingest.targets import normalise_name, read_labels
from simharps.sites import SITES

STAR_COLUMNS = {
    "teff_k": ("teff_k", "teff"),
    "logg_cgs": ("logg_cgs", "logg"),
    "mh_dex": ("mh_dex", "mh", "[m/h]", "feh", "[fe/h]", "fe_h"),
    "vsini_kms": ("vsini_kms", "vsini"),
    "vmag": ("vmag", "v"),
    "rv_kms": ("rv_kms", "rv"),
}
REQUIRED_LABELS = ("teff_k", "vmag")
CONDITION_COLUMNS = ("berv_kms", "airmass", "exptime_s", "mjd_utc", "ra_deg", "dec_deg", "pwv_mm", "read_noise_e",
                     "gain_e_per_adu")
TWIN_ARRAYS = ("flux", "error", "expected", "stellar", "telluric", "response")
"""Arrays of a twin set: the noisy product, its error, the noiseless product and the truth components."""


def read_star_labels(csv_path):
    """{normalised name: {teff_k, logg_cgs, mh_dex, vsini_kms, vmag, rv_kms, name}} (None where a value is blank)."""
    return {key: {**values, "name": name}
            for key, (name, values) in read_labels(csv_path, STAR_COLUMNS, REQUIRED_LABELS).items()}


def _value(row, name):
    """A finite float from a table row, or None (NaN and absent columns are missing)."""
    try:
        value = float(row[name])
    except (KeyError, ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


def row_label(row, labels):
    """The labels of a dataset row's star, or None: matched through ``object``, ``target_id``, ``target_name``."""
    for column in ("object", "target_id", "target_name", "label_name"):
        try:
            key = normalise_name(str(row[column]))
        except KeyError:
            continue
        if key in labels:
            return labels[key]
    return None


def twin_parameters(row, labels):
    """Forward-model parameters of one real spectrum's twin, and where each condition came from.

    Returns ``(params, sources)``; raises ParameterError when the star has no label or a condition is missing.
    """
    star = row_label(row, labels)
    if star is None:
        raise ParameterError(f"no label for object {_text(row, 'object')!r} (target {_text(row, 'target_id')!r})")
    missing = [name for name in REQUIRED_LABELS if star[name] is None]
    if missing:
        raise ParameterError(f"label {star['name']!r} lacks {missing}")
    params = {name: star[name] for name in ("teff_k", "logg_cgs", "mh_dex", "vsini_kms", "vmag")
              if star[name] is not None}
    sources = {}
    for name in CONDITION_COLUMNS:
        value = _value(row, name)
        if value is None and name in ("berv_kms", "airmass", "exptime_s"):
            raise ParameterError(f"{_text(row, 'file')}: header condition {name} is missing")
        if value is not None:
            params[name] = value
            sources[name] = "header" if name != "pwv_mm" else f"ingest ({_text(row, 'pwv_source') or 'unknown'})"
    seeing = _value(row, "seeing_arcsec")
    if seeing is not None and seeing > 0:
        params["seeing_arcsec"] = seeing
    sources["seeing_arcsec"] = "header" if "seeing_arcsec" in params else "default"
    rv = _value(row, "rv_kms")
    if rv is None:
        rv = star["rv_kms"]
    if rv is None:
        raise ParameterError(f"{_text(row, 'file')}: no rv_kms (neither measured at ingest nor in the label)")
    params["rv_kms"] = rv
    sources["rv_kms"] = "ingest CCF" if _value(row, "rv_kms") is not None else "label"
    mask = _text(row, "ccf_mask").upper()
    if sources["rv_kms"] == "ingest CCF" and mask in MASK_NAMES:
        sources["ccf_mask"] = mask
    site = _text(row, "site")
    if site in SITES:
        params["site"] = site
    return params, sources


def _text(row, name):
    try:
        return str(row[name])
    except KeyError:
        return ""


def night_id(mjd_utc, lon_deg):
    """Observing night of each exposure: the local mean solar date at the start of the night (changes at noon)."""
    return np.floor(np.asarray(mjd_utc, dtype=float) + np.asarray(lon_deg, dtype=float) / 360.0 - 0.5).astype(int)


def row_nights(table):
    """``night_id`` of every row of a real dataset table (site longitude from ``simharps.sites``, default La Silla)."""
    lon = [SITES.get(_text(row, "site"), SITES["lasilla"])["lon_deg"] for row in table]
    return night_id(np.asarray(table["mjd_utc"], dtype=float), lon)


@dataclass
class TwinSet:
    """Twins of a real set on ``wavelength_air_aa``: ``arrays`` name -> (n, m) float32 (NaN for failed rows),
    ``second_flux`` (n, m) another noise draw or None, ``truth`` / ``sources`` per row, ``failed`` [(index, reason)],
    ``rv_zero_points_kms`` {"STAR/MASK": the CCF zero point added to the ingest velocities}."""

    wavelength_air_aa: np.ndarray
    arrays: dict
    second_flux: np.ndarray
    truth: list
    sources: list
    failed: list = field(default_factory=list)
    rv_zero_points_kms: dict = field(default_factory=dict)


def ccf_zero_point_kms(params, mask):
    """Simulated minus CCF-measured velocity (km/s) of a noiseless full-range spectrum with ``params``, measured
    as ingest measures real spectra (``measure_stellar_rv`` with ``mask``, telluric pixels ignored).

    Adding it to a velocity measured on a real spectrum with the same mask puts the simulator's lines where the real
    star's are: the HARPS masks' line positions carry their own zero point (stellar, not laboratory, wavelengths).
    Approximation: one value per star and mask (it changes by < 1 m/s with BERV and conditions along a series).
    """
    sim = simulate(params, np.random.SeedSequence(0), components=True)
    expected = np.where(sim.error > 0, sim.flux_expected, np.nan)
    measured = measure_stellar_rv(sim.wavelength_air_aa, expected, telluric=sim.components["telluric"],
                                  masks=(mask,))
    if measured is None:
        raise SimharpsError(f"no CCF dip in the simulated spectrum with mask {mask} (zero point undefined)")
    return float(params["rv_kms"] - measured.rv_kms)


def simulate_twins(table, labels, *, window, seed, second_draw=False, indices=None, progress=None):
    """Twins of the rows ``indices`` (default all) of a real dataset ``table`` over ``window`` (A, air).

    ``second_draw``: also simulate copy 1 (same conditions, another noise seed). ``progress``: a callable
    ``progress(done, total)`` or None. Rows that cannot be simulated are NaN and listed in ``failed``. Velocities
    measured at ingest get the simulator's CCF zero point (``ccf_zero_point_kms``, once per star and mask; the
    values are in ``TwinSet.rv_zero_points_kms`` as ``{"STAR/MASK": km/s}``).
    """
    indices = np.arange(len(table)) if indices is None else np.asarray(indices)
    arrays, second, truth, sources, failed = {}, None, [], [], []
    grid = None
    zero_points = {}
    for k, index in enumerate(indices):
        row = table[int(index)]
        try:
            params, where = twin_parameters(row, labels)
            if "ccf_mask" in where:
                key = (row_label(row, labels)["name"], where["ccf_mask"])
                if key not in zero_points:
                    zero_points[key] = ccf_zero_point_kms(params, where["ccf_mask"])
                params["rv_kms"] += zero_points[key]
                where["rv_kms"] = "ingest CCF + simulator CCF zero point"
            sim = simulate(params, np.random.SeedSequence(seed, spawn_key=(int(index), 0)), components=True,
                           window=window)
            other = simulate(params, np.random.SeedSequence(seed, spawn_key=(int(index), 1)),
                             window=window).flux if second_draw else None
        except SimharpsError as problem:
            failed.append((k, str(problem)))
            truth.append({})
            sources.append({})
            continue
        if grid is None:
            grid = sim.wavelength_air_aa
            arrays = {name: np.full((indices.size, grid.size), np.nan, dtype=np.float32) for name in TWIN_ARRAYS}
            second = np.full((indices.size, grid.size), np.nan, dtype=np.float32) if second_draw else None
        values = {"flux": sim.flux, "error": sim.error, "expected": sim.flux_expected, **sim.components}
        no_data = ~(sim.error > 0)    # no order reaches (CCD gap, ends): NaN, as in the real datasets
        for name in TWIN_ARRAYS:
            arrays[name][k] = values[name]
            if name in ("flux", "error", "expected"):
                arrays[name][k, no_data] = np.nan
        if second_draw:
            second[k] = np.where(no_data, np.nan, other)
        truth.append(sim.truth)
        sources.append(where)
        if progress:
            progress(k + 1, indices.size)
    if grid is None:
        reasons = "; ".join(reason for _, reason in failed[:3])
        raise SimharpsError(f"no twin could be simulated ({reasons})")
    return TwinSet(grid, arrays, second, truth, sources, failed,
                   {f"{star}/{mask}": value for (star, mask), value in zero_points.items()})
