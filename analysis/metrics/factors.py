"""Factors: the table columns that latents are scored against, their group, kind and missing values.

A factor is a physical parameter of docs/contracts.md present in the table (truth for simulated sets, header
metadata for real ones) or an identity (``target_id``, ``night``). Each belongs to one group:

- ``intrinsic``: the star (teff_k, logg_cgs, mh_dex, vsini_kms, vmic_kms, vmac_kms, target_id);
- ``kinematic``: rv_kms, berv_kms;
- ``extrinsic``: everything else (observation and nuisance: airmass, pwv_mm, seeing_arcsec, fibre_offset_arcsec,
  snr_550, exptime_s, vmag, ebv_mag, rv_dust, logn_caii_cm2, instrument_mode, fibre_era, night). ``vmag`` is
  extrinsic: it sets only the flux scale and the noise, not the shape of the spectrum.

Conventions:

- missing values: NaN, and the header sentinel ``<= 0`` for the strictly positive quantities in ``POSITIVE_ONLY``
  (all 86 alpha Cen B headers carry ``seeing_arcsec = -1``); text ``""`` is missing;
- dropped: bookkeeping columns (never chosen automatically), factors with fewer than ``MIN_ROWS`` known values or
  a single distinct value (zero entropy breaks MIG), and identities whose median group size is below 2 (a label
  nearly unique per spectrum carries no repeat structure to measure);
- kind: text, bool and integer columns are discrete; a float column with at most ``MAX_DISCRETE_LEVELS`` distinct
  values (factorial design levels) is treated as discrete too; other floats are continuous;
- ``night`` = ``analysis.split.night_index(mjd_utc)``: local noon to local noon at La Silla,
  floor(MJD - 0.5 - 4.715 h / 24 h) (Paranal differs by 1.3 min of longitude, negligible).

Example
-------
>>> factors, skipped = select_factors(table)          # doctest: +SKIP
>>> [(f.name, f.group, f.discrete) for f in factors]  # doctest: +SKIP
"""

from dataclasses import dataclass

import numpy as np

from analysis.split import night_index

INTRINSIC = ("teff_k", "logg_cgs", "mh_dex", "vsini_kms", "vmic_kms", "vmac_kms", "target_id")
KINEMATIC = ("rv_kms", "berv_kms")
EXTRINSIC = ("vmag", "ebv_mag", "rv_dust", "logn_caii_cm2", "airmass", "pwv_mm", "seeing_arcsec",
             "fibre_offset_arcsec", "snr_550", "exptime_s", "instrument_mode", "fibre_era", "night")
AUTO_FACTORS = INTRINSIC + KINEMATIC + EXTRINSIC
"""Columns chosen automatically (in this order) when present and varying."""

IDENTITIES = ("target_id", "night")
"""Discrete labels of a star / a night: scored by mutual information and repeat metrics only (a held-out target
or night is never in the training split, so regressors and classifiers cannot score them)."""

BOOKKEEPING = ("spectrum_index", "failed", "target_index", "epoch", "variant", "design_group", "efficiency",
               "window_start_aa", "window_stop_aa", "seed_key", "stages", "site", "instrument")
POSITIVE_ONLY = ("seeing_arcsec", "airmass", "snr_550", "exptime_s", "pwv_mm")
MIN_ROWS = 10
MAX_DISCRETE_LEVELS = 10
GROUPS = ("intrinsic", "extrinsic", "kinematic")


@dataclass
class Factor:
    """One factor over the analysed rows.

    ``values``: float64 with NaN for missing (continuous) or int64 codes 0..m-1 with -1 for missing (discrete);
    ``levels``: the original value of each code (discrete only).
    """

    name: str
    group: str
    discrete: bool
    values: np.ndarray
    levels: tuple = ()

    @property
    def identity(self):
        return self.name in IDENTITIES

    @property
    def known(self):
        """Rows where the factor is known (bool array)."""
        return self.values >= 0 if self.discrete else np.isfinite(self.values)


def group_of(name):
    """``intrinsic`` / ``kinematic`` / ``extrinsic`` (the default for names outside the lists above)."""
    if name in INTRINSIC:
        return "intrinsic"
    return "kinematic" if name in KINEMATIC else "extrinsic"


def colnames(table):
    """Column names of an astropy Table or a numpy structured array."""
    return list(table.colnames) if hasattr(table, "colnames") else list(table.dtype.names)


def raw_column(table, name):
    """The column as a numpy array; ``night`` is derived from ``mjd_utc``."""
    if name == "night" and "night" not in colnames(table):
        mjd = np.asarray(table["mjd_utc"], dtype=np.float64)
        return np.where(np.isfinite(mjd), night_index(np.where(np.isfinite(mjd), mjd, 0.0)), -1)
    return np.asarray(table[name])


def _encode(column, name):
    """(discrete, values) per the module conventions; None when the column cannot be a factor."""
    if column.dtype.kind in "US":
        text = column.astype(str)
        known = text != ""
    elif column.dtype.kind == "O":
        text = np.array(["" if v is None else str(v) for v in column])
        known = text != ""
    elif column.dtype.kind in "biu":
        text, known = column, np.ones(column.size, bool) if name != "night" else column >= 0
    elif column.dtype.kind == "f":
        values = column.astype(np.float64)
        if name in POSITIVE_ONLY:
            values = np.where(values > 0, values, np.nan)
        finite = np.isfinite(values)
        if np.unique(values[finite]).size > MAX_DISCRETE_LEVELS:
            return False, values, ()
        text, known = values, finite
    else:
        return None
    levels, codes = np.unique(text[known], return_inverse=True)
    out = np.full(column.size, -1, dtype=np.int64)
    out[known] = codes
    return True, out, tuple(levels.tolist())


def _reason_to_drop(factor):
    known = factor.known
    if known.sum() < MIN_ROWS:
        return f"fewer than {MIN_ROWS} known values"
    if factor.discrete:
        counts = np.bincount(factor.values[known])
        if counts.size < 2:
            return "constant"
        if factor.identity and np.median(counts) < 2:
            return "nearly one spectrum per label (median group size < 2)"
    elif np.nanmin(factor.values) == np.nanmax(factor.values):
        return "constant"
    return None


def select_factors(table, names=None, rows=None):
    """Factors over ``rows`` (bool mask or index; default all) of ``table``.

    ``names``: explicit list (any column, or ``night``), else ``AUTO_FACTORS`` present in the table.
    Returns ``(factors, skipped)`` with ``skipped`` = {name: reason}. An explicit name that is not a column
    raises ``ValueError``.
    """
    columns = colnames(table)
    available = set(columns) | ({"night"} if "mjd_utc" in columns else set())
    if names is None:
        names = [n for n in AUTO_FACTORS if n in available]
    else:
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(f"metrics factors not in the dataset table: {', '.join(missing)} "
                             f"(columns: {', '.join(columns)})")
    rows = slice(None) if rows is None else rows
    factors, skipped = [], {}
    for name in names:
        encoded = _encode(raw_column(table, name)[rows], name)
        if encoded is None:
            skipped[name] = "not a number, text or integer column"
            continue
        factor = Factor(name, group_of(name), encoded[0], encoded[1], encoded[2])
        reason = _reason_to_drop(factor)
        if reason:
            skipped[name] = reason
        else:
            factors.append(factor)
    return factors, skipped


def cluster_labels(table, rows=None):
    """Integer cluster per row for grouped splits and subsampling: the target, or the night for one target.

    Returns ``(labels, by)`` with ``by`` in {"target_id", "night", "spectrum"}.
    """
    columns = colnames(table)
    rows = slice(None) if rows is None else rows
    if "target_id" in columns:
        targets = np.asarray(table["target_id"]).astype(str)[rows]
        if np.unique(targets).size > 1:
            return np.unique(targets, return_inverse=True)[1], "target_id"
    if "mjd_utc" in columns:
        nights = raw_column(table, "night")[rows]
        if np.unique(nights).size > 1:
            return np.unique(nights, return_inverse=True)[1], "night"
    n = np.arange(len(table))[rows].size
    return np.arange(n), "spectrum"
