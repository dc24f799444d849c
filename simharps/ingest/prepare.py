"""Real archive files -> dataset rows + arrays on the dataset grid (everything but the on-disk store).

Per file (``prepare_file``; bounded memory: one spectrum's arrays, ~20 MB of float64 temporaries):

1. ``simharps.io.read_harps`` (ADP, DRS s1d, ESPRESSO-pipeline S1D); unreadable files, e2ds images and
   calibration frames are rejected with the reader's reason.
2. Header checks (``simharps.ingest.quality``); a missing BERV is recomputed from the header
   (``simharps.kinematics.barycentric_correction`` with ``berv_inputs_from_header``; ``berv_source``).
3. Onto the dataset grid (0.01 A lattice, air, barycentric; ``simharps.ingest.resample``): lattice products by
   index offset, others (and observatory-frame products, after lambda (1 + BERV / c)) by flux-conserving
   resampling (``resampled``, ``resampling``). **No data is NaN** in flux, error and components: outside the
   product's range, pixels its quality column flags, and runs of >= ``ZERO_RUN_BINS`` exact zeros (the DRS fills
   the CCD gap and the ends with zeros).
4. Error: the file's where it has one (``error_source`` "file"), else ``simharps.ingest.noise`` ("modelled";
   ``modelled_error_fraction`` says how many bins); flux in e- per 0.01 A bin (``flux_unit``).
5. Quality cuts (``QualityThresholds``); the measured numbers go into the row.
6. Telluric component (``simharps.ingest.telluric``): PWV fitted / header / default, the transmission at the header
   BERV and airmass on the grid (barycentric), convolved to the instrument's R (``resolving_power``).
7. RV by CCF with the best-matching HARPS mask (``simharps.ingest.masks``): ``rv_ccf_kms`` (also written as the
   contract name ``rv_kms``: a measurement, not a truth), ``ccf_mask``, ``ccf_fwhm_kms``, ``ccf_contrast``.

Over files: ``scan_paths`` lists each file once (a file named twice, or also found in a named folder, is skipped
with its reason); ``iter_prepared`` streams (path, PreparedSpectrum or None, reason) in input order, optionally with
worker processes, and rejects a file whose bytes repeat an earlier file's (same sha256) as a duplicate;
``finish_rows`` assigns ``target_id``/``epoch`` (``simharps.ingest.targets``) and joins labels;
``prepare_files`` does all of it in memory and returns an ``IngestResult`` (n x 313,201 float32 per array on the
full grid: 1.25 MB per spectrum and array; for the whole archive stream with ``iter_prepared`` into the store
in chunks, keep the rows, and call ``finish_rows`` at the end).

Row columns use the project's names (``simharps.io.harps`` meta: instrument, site, object, ra_deg, dec_deg,
mjd_utc, exptime_s, berv_kms, airmass, seeing_arcsec, snr_550, ...); ``pwv_mm`` is the value the telluric
component used (the header's IWV is ``pwv_header_mm``); ``frame`` is the dataset's ("barycentric"),
``product_frame`` the file's.

Example
-------
>>> from simharps.ingest import prepare_files
>>> result = prepare_files(["../shared/data/harps"], labels_csv=None)
>>> result.flux.shape, [row["target_id"] for row in result.rows], result.rejected
"""

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simharps.constants import C_KMS
from simharps.dataset.runner import check_workers
from simharps.workers import WorkerPool
from simharps.errors import ParameterError, SimharpsError
from simharps.grids import product_grid
from simharps.ingest.masks import MASK_NAMES, measure_stellar_rv
from simharps.ingest.noise import NoiseModel, modelled_error
from simharps.ingest.quality import QualityThresholds, RejectedFile, assess_spectrum, check_meta, nonfinite_fraction
from simharps.ingest.resample import (RESAMPLING_METHOD, check_lattice_grid, on_lattice, place_on_lattice,
                                      resample_flux_conserving)
from simharps.ingest.targets import assign_targets, join_labels, normalise_name, target_position
from simharps.ingest.telluric import RESOLVING_POWER, choose_pwv, fit_pwv, telluric_component
from simharps.io.harps import read_harps
from simharps.kinematics import barycentric_correction, berv_inputs_from_header

COMPONENTS = ("telluric",)
"""Component arrays ingest can compute for real spectra."""
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
"""File names a directory scan picks up (explicit paths are always tried)."""
ZERO_RUN_BINS = 10
"""Runs of at least this many exact zeros in a product are no-data (CCD gap, ends), not flux."""
FLUX_UNIT = "e- per 0.01 A bin"
META_COLUMNS = ("instrument", "site", "telescope", "object", "ra_deg", "dec_deg", "mjd_utc", "exptime_s", "berv_kms",
                "airmass", "seeing_arcsec", "snr_550", "snr_adp", "gain_e_per_adu", "read_noise_e", "pipeline",
                "product")


@dataclass(frozen=True)
class IngestConfig:
    """Settings of one ingest (picklable, so worker processes get the same)."""

    grid: np.ndarray | None = None
    thresholds: QualityThresholds = QualityThresholds()
    noise: NoiseModel = NoiseModel()
    pwv_default_mm: float | None = None
    components: tuple = COMPONENTS
    masks: tuple = MASK_NAMES

    def __post_init__(self):
        unknown = [name for name in self.components if name not in COMPONENTS]
        if unknown:
            raise ParameterError(f"components must be among {COMPONENTS}, got {unknown}")
        if self.pwv_default_mm is not None and not (np.isfinite(self.pwv_default_mm) and self.pwv_default_mm >= 0):
            raise ParameterError(f"pwv_default_mm must be >= 0 mm, got {self.pwv_default_mm}")
        grid = product_grid() if self.grid is None else check_lattice_grid(self.grid)
        object.__setattr__(self, "grid", grid)


@dataclass
class PreparedSpectrum:
    """One ingested spectrum: its row and float32 arrays on the dataset grid (NaN = no data)."""

    row: dict
    flux: np.ndarray
    error: np.ndarray
    components: dict = field(default_factory=dict)


@dataclass
class IngestResult:
    """Rows (contract names), (n, n_channels) float32 flux/error/components on ``wavelength_air_aa``, rejected
    files and skipped duplicate paths, each as (path, reason)."""

    rows: list
    flux: np.ndarray
    error: np.ndarray
    components: dict
    wavelength_air_aa: np.ndarray
    rejected: list
    skipped: list = field(default_factory=list)


def scan_paths(paths_or_dirs):
    """(files, skipped): the files to ingest, each once (explicit files as given; directories scanned recursively
    for FITS names, sorted), and [(path, reason)] of the paths skipped because they name a file already listed
    (same resolved path: given twice, through a symbolic link, or also inside a given folder)."""
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    files, skipped, first = [], [], {}
    for entry in map(Path, paths_or_dirs):
        found = sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.name.lower().endswith(FITS_SUFFIXES)) if entry.is_dir() else [entry]
        for path in found:
            original = first.setdefault(path.resolve(), path)
            if original is path:
                files.append(path)
            else:
                skipped.append((str(path), "listed twice" if str(path) == str(original)
                                 else f"the same file as {original}"))
    return files, skipped


def expand_paths(paths_or_dirs):
    """Files to ingest, each once (``scan_paths`` without the skipped list)."""
    return scan_paths(paths_or_dirs)[0]


def _content_sha256(path):
    """sha256 (hex) of the file's bytes, or None when it cannot be read (``read_harps`` then gives the reason)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def prepare_file(path, config=None):
    """Ingest one file; returns a PreparedSpectrum or raises RejectedFile with the reason."""
    config = config or IngestConfig()
    try:
        product = read_harps(path)
    except SimharpsError as exc:
        raise RejectedFile(path, getattr(exc, "reason", str(exc))) from exc
    meta = dict(product.meta)
    reasons = check_meta(meta)
    if reasons:
        raise RejectedFile(path, "; ".join(reasons))
    berv_source = "header"
    if meta["berv_kms"] is None:
        meta["berv_kms"], berv_source = _computed_berv(path, product.header), "computed"

    flagged = product.quality != 0 if product.quality is not None else None
    bad_fraction = nonfinite_fraction(product.flux, flagged)
    if bad_fraction > config.thresholds.max_nonfinite_fraction:
        raise RejectedFile(path, f"non-numeric flux: {bad_fraction:.2%} of the pixels are NaN/inf "
                                 f"(> {config.thresholds.max_nonfinite_fraction:.2%})")
    grid = config.grid
    flux, error, resampled = _on_grid(product, meta, grid, flagged)
    modelled = np.isfinite(flux) & ~(np.isfinite(error) & (error > 0))
    if modelled.any():
        error = np.where(modelled, modelled_error(grid, flux, meta, config.noise), error)
    report = assess_spectrum(grid, flux, error, config.thresholds)
    if report.reasons:
        raise RejectedFile(path, "; ".join(report.reasons))

    resolution = _resolving_power(product.header, meta)
    airmass = max(meta["airmass"], 1.0)  # headers near zenith can round below 1; the model starts at 1
    fit = fit_pwv(grid, flux, error, meta["berv_kms"], airmass, resolution)
    pwv_mm, pwv_source = choose_pwv(fit, meta.get("pwv_mm"), meta.get("site"), config.pwv_default_mm)
    telluric = telluric_component(grid, meta["berv_kms"], airmass, pwv_mm, resolution)
    telluric[~np.isfinite(flux)] = np.nan
    rv = measure_stellar_rv(grid, flux, telluric=telluric, masks=config.masks)

    row = {"path": str(Path(path)), "file": Path(path).name}
    row.update({name: meta.get(name) for name in META_COLUMNS})
    row.update({
        "frame": "barycentric", "product_frame": meta.get("frame"), "berv_source": berv_source,
        "resolving_power": resolution, "resampled": resampled, "resampling": RESAMPLING_METHOD if resampled else None,
        "flux_unit": FLUX_UNIT, "error_source": "modelled" if modelled.any() else "file",
        "modelled_error_fraction": float(modelled.sum() / max(np.isfinite(flux).sum(), 1)),
        "n_valid": int(np.isfinite(flux).sum()),
        "pwv_mm": pwv_mm, "pwv_source": pwv_source, "pwv_header_mm": meta.get("pwv_mm"),
        "pwv_fit_mm": fit.pwv_mm if fit else None, "pwv_fit_err_mm": fit.pwv_err_mm if fit else None,
        "rv_ccf_kms": rv.rv_kms if rv else None, "rv_kms": rv.rv_kms if rv else None,
        "ccf_mask": rv.mask if rv else None, "ccf_fwhm_kms": rv.fwhm_kms if rv else None,
        "ccf_contrast": rv.contrast if rv else None, "ccf_n_lines": rv.n_lines if rv else None,
        "target_name": normalise_name(meta.get("object")),
    })
    row.update(target_position(product.header, meta))
    row.update(report.metrics())
    components = {"telluric": telluric.astype(np.float32)} if "telluric" in config.components else {}
    return PreparedSpectrum(row, flux.astype(np.float32), error.astype(np.float32), components)


def _computed_berv(path, header):
    try:
        return float(barycentric_correction(**berv_inputs_from_header(header)))
    except (SimharpsError, KeyError, TypeError, ValueError) as exc:
        raise RejectedFile(path, f"header has no BERV and it cannot be computed from the header ({exc})") from exc


def _resolving_power(header, meta):
    value = header.get("SPEC_RES")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return RESOLVING_POWER.get(meta.get("instrument"), RESOLVING_POWER["HARPS"])


def _on_grid(product, meta, grid, flagged):
    """(flux, error, resampled) on the lattice grid; NaN = no data (error all NaN if the file has none)."""
    flux = np.asarray(product.flux, dtype=float).copy()
    error = None if product.error is None else np.asarray(product.error, dtype=float).copy()
    no_data = _zero_runs(flux)
    if flagged is not None:
        no_data |= flagged
    flux[no_data] = np.nan
    if error is not None:
        error[no_data] = np.nan
    wave = np.asarray(product.wavelength_air_aa, dtype=float)
    if meta.get("frame") == "observatory":
        wave = wave * (1.0 + meta["berv_kms"] / C_KMS)
    if meta.get("frame") != "observatory" and on_lattice(wave):
        out_error = place_on_lattice(wave, error, grid) if error is not None else np.full(grid.size, np.nan)
        return place_on_lattice(wave, flux, grid), out_error, False
    out_flux, out_error = resample_flux_conserving(wave, flux, error, grid)
    return out_flux, (out_error if out_error is not None else np.full(grid.size, np.nan)), True


def _zero_runs(flux):
    """Mask of runs of >= ZERO_RUN_BINS exact zeros."""
    zero = np.concatenate([[False], flux == 0, [False]])
    starts = np.flatnonzero(~zero[:-1] & zero[1:])
    stops = np.flatnonzero(zero[:-1] & ~zero[1:])
    mask = np.zeros(flux.size, bool)
    for start, stop in zip(starts, stops):
        if stop - start >= ZERO_RUN_BINS:
            mask[start:stop] = True
    return mask


def _prepare_or_reason(path, config):
    """(PreparedSpectrum, None, sha256) or (None, reason, sha256): never raises, so one bad file cannot stop an
    ingest (sha256 of the file's bytes, None if unreadable)."""
    digest = _content_sha256(path)
    try:
        return prepare_file(path, config), None, digest
    except RejectedFile as exc:
        return None, exc.reason, digest
    except Exception as exc:  # noqa: BLE001 - any failure of one file becomes its rejection reason
        return None, f"unexpected error while ingesting ({type(exc).__name__}: {exc})", digest


def iter_prepared(paths_or_dirs, config=None, *, workers=1, chunksize=4, progress=None):
    """Yield (path, PreparedSpectrum or None, reason or None) per file, in input order.

    Each file is read once (``expand_paths``); a file with the same bytes as an earlier one is rejected as its
    duplicate. ``workers`` > 1 runs ``prepare_file`` in that many processes (each holds the telluric tables,
    ~30 MB; they exit with this process); results come back in order. ``progress``: a tqdm bar (default: only when
    stderr is a terminal).
    """
    config = config or IngestConfig()
    workers = check_workers(workers)
    files = expand_paths(paths_or_dirs)
    bar = _progress(len(files), progress)
    first_with = {}
    try:
        for path, (prepared, reason, digest) in zip(files, _prepared(files, config, workers, chunksize)):
            first = first_with.setdefault(digest, path) if digest else path
            if first is not path:
                prepared, reason = None, f"duplicate of {first} (identical content, sha256 {digest[:16]}...)"
            bar.update(1)
            yield path, prepared, reason
    finally:
        bar.close()


def _prepared(files, config, workers, chunksize):
    """``_prepare_or_reason`` of each file, in order; in ``workers`` processes when there are several."""
    if workers > 1 and len(files) > 1:
        with WorkerPool(workers) as pool:
            yield from pool.map(_prepare_or_reason, files, [config] * len(files), chunksize=chunksize)
    else:
        for path in files:
            yield _prepare_or_reason(path, config)


def _progress(total, progress):
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if progress is None else bool(progress)
    return tqdm(total=total, desc="ingest", unit="file", disable=not enabled)


def finish_rows(rows, *, labels_csv=None, tolerance_arcsec=10.0, name_tolerance_arcsec=120.0):
    """Set ``target_id``/``epoch`` on all rows (needs every row of the ingest) and join the labels CSV."""
    assign_targets(rows, tolerance_arcsec=tolerance_arcsec, name_tolerance_arcsec=name_tolerance_arcsec)
    if labels_csv is not None:
        join_labels(rows, labels_csv)
    return rows


def prepare_files(paths_or_dirs, *, thresholds=QualityThresholds(), labels_csv=None, grid=None, pwv_default_mm=None,
                  components=COMPONENTS, noise=NoiseModel(), masks=MASK_NAMES, tolerance_arcsec=10.0, workers=1,
                  progress=None):
    """Ingest files and directories into memory: an IngestResult (rows in input order, rejected files and skipped
    duplicate paths with reasons)."""
    config = IngestConfig(grid=grid, thresholds=thresholds, noise=noise, pwv_default_mm=pwv_default_mm,
                          components=tuple(components), masks=tuple(masks))
    rows, fluxes, errors, parts, rejected = [], [], [], {name: [] for name in config.components}, []
    files, skipped = scan_paths(paths_or_dirs)
    for path, prepared, reason in iter_prepared(files, config, workers=workers, progress=progress):
        if prepared is None:
            rejected.append((str(path), reason))
            continue
        rows.append(prepared.row)
        fluxes.append(prepared.flux)
        errors.append(prepared.error)
        for name in parts:
            parts[name].append(prepared.components[name])
    finish_rows(rows, labels_csv=labels_csv, tolerance_arcsec=tolerance_arcsec)
    n_channels = config.grid.size

    def stack(arrays):
        return np.stack(arrays) if arrays else np.zeros((0, n_channels), np.float32)

    return IngestResult(rows, stack(fluxes), stack(errors), {name: stack(a) for name, a in parts.items()},
                        config.grid, rejected, skipped)
