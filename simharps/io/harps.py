"""Readers of HARPS archive spectra (and the ESPRESSO-pipeline S1D layout) into one product object.

Layouts (``meta["product"]``)
-----------------------------
``adp``  ESO Phase-3 1D spectrum: primary header + binary table ``SPECTRUM`` of one row with array columns
         ``WAVE`` (A, air, barycentric), ``FLUX``, ``ERR``. ``WAVELMIN``/``WAVELMAX``/``SPEC_BIN`` are in nm while
         ``WAVE`` is in A (the column's ``TUNIT`` is what counts). The archive fills ``ERR`` with NaN where the
         pipeline had no error spectrum; such an error is returned as None. A ``WAVE_AIR`` column, where present,
         is preferred over ``WAVE``.
``s1d``  HARPS DRS ``s1d_A``: primary 1-D image, ``lambda = CRVAL1 + CDELT1 * (i + 1 - CRPIX1)`` (A, air,
         barycentric), no error array.
``S1D``  ESPRESSO-based pipelines (espdr, and the newer HARPS DRS): binary table of one row per pixel with
         ``wavelength`` (vacuum), ``wavelength_air``, ``flux``, ``error``, ``quality``. The air column is used;
         without it the vacuum one is converted with ``simharps.grids.vacuum_to_air``.
``e2ds`` HARPS DRS per-order image (``read_e2ds``): 72 x 4096 extracted orders in the observatory frame; the
         wavelength solution is the header polynomial ``ESO DRS CAL TH COEFF LL{(deg+1)*order + power}`` in pixel
         (float64), else the ``wave_A`` file the header names (float32 image) when it lies beside the file; the
         blaze is the ``blaze_A`` file the header names, when present.

Header metadata (``meta``) uses the project's parameter names; a missing optional keyword gives None, and so does
ESO's "not recorded" sentinel (-1 or 0) for airmass and seeing, -1 for PWV (``simharps.io.keywords.recorded``).
Where a keyword differs between HARPS and ESPRESSO, the first one present is used:

==================  ======================================================================================
name                keywords (first found)
==================  ======================================================================================
instrument          ``INSTRUME`` (HARPS or ESPRESSO; anything else is not a HARPS product)
site                ``lasilla``/``paranal`` from ``ESO TEL[n] GEOLAT/GEOLON``; without them from ``TELESCOP``
telescope           ``TELESCOP``
object              ``OBJECT``, ``ESO OBS TARG NAME``
ra_deg, dec_deg     ``RA``, ``DEC``
mjd_utc             ``MJD-OBS`` (exposure start)
exptime_s           ``EXPTIME``
berv_kms            ``ESO DRS BERV`` (HARPS DRS), ``ESO QC BERV`` (ESPRESSO-based pipelines)
airmass             ``ESO TEL[n] AIRM START`` (start of exposure)
seeing_arcsec       ``ESO TEL[n] AMBI FWHM START`` (start of exposure)
pwv_mm              ``ESO TEL[n] AMBI IWV START``
snr_550             ``ESO DRS SPE EXT SN50`` (DRS order 50, ~5565 A, per extracted pixel); never ``SNR``
snr_adp             ``SNR`` (ADP: the median over the 72 orders of ``ESO DRS SPE EXT SN{i}``, another quantity)
gain_e_per_adu      ``GAIN``, ``ESO DRS CCD CONAD``
read_noise_e        ``DETRON``, ``ESO DRS CCD SIGDET`` (per CCD pixel)
site_lat_deg, ...   ``ESO TEL[n] GEOLAT``, ``GEOLON``, ``GEOELEV`` (``site_lon_deg``, ``site_elevation_m``)
frame               ``SPECSYS`` (``BARYCENT`` -> barycentric, ``TOPOCENT`` -> observatory); else the layout's frame
pipeline, product   from ``PROCSOFT``, ``ESO DRS VERSION`` or ``ESO PRO REC1 PIPE ID``, and the layout
==================  ======================================================================================

``ESO TEL[n]`` means ``ESO TEL`` (La Silla 3.6 m) or ``ESO TEL1``..``ESO TEL4`` (the VLT unit telescope in use).
Files written by ``simharps.io.write_adp`` also carry the simulation truth (``truth``, see
``simharps.io.keywords``); for real files it is empty.

Any file that cannot be read as one of these products raises ``simharps.errors.HarpsFormatError`` naming the
file and the reason (truncated, not FITS, not a HARPS product, missing column, no finite flux, ...).

Example
-------
>>> from simharps.io import read_harps
>>> product = read_harps("ADP.2014-09-16T11:04:45.123.fits")
>>> product.wavelength_air_aa.size, product.meta["berv_kms"], product.error is None
(313124, -8.6859110031507, True)
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from simharps.errors import HarpsFormatError
from simharps.grids import vacuum_to_air
from simharps.io.keywords import read_truth, recorded, site_from_coordinates, site_from_telescope
from simharps.sites import telescope_keywords

SUPPORTED_INSTRUMENTS = ("HARPS", "ESPRESSO")
"""``INSTRUME`` values accepted as HARPS(-pipeline) products."""

SPECTRUM_LAYOUTS = ("adp", "s1d", "S1D")
"""Layouts ``read_harps`` returns (1-D spectra); ``e2ds`` is read by ``read_e2ds``."""

HARPS_ECHELLE_ORDERS = np.concatenate([np.arange(161, 115, -1), np.arange(114, 88, -1)])
"""Echelle order number of each e2ds row: blue CCD 161..116 (46 rows), red CCD 114..89 (26 rows); order 115 falls
in the CCD gap (HARPS user manual; the e2ds header's ``ESO DRS CAL TH ORDER NBLUE/NRED`` = 46/26)."""

_FRAMES = {"BARYCENT": "barycentric", "TOPOCENT": "observatory"}


@dataclass
class HarpsProduct:
    """A 1-D archive spectrum: arrays in the file's own dtype (native byte order), header and metadata.

    ``wavelength_air_aa``: air wavelengths, A, in the product's frame (``meta["frame"]``); ``flux`` in
    ``flux_unit`` (the file's unit string, None where it gives none); ``error``: 1-sigma flux error, None where
    the file has none or it is all NaN; ``quality``: the S1D/ADP quality flags where present (0 = good);
    ``header``: the primary header; ``meta``: header metadata under the project's parameter names;
    ``truth``: the ``HIERARCH SIMHARPS`` parameters of simulated files (empty for real ones).
    """

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray | None
    header: fits.Header
    path: Path
    meta: dict
    truth: dict = field(default_factory=dict)
    quality: np.ndarray | None = None
    flux_unit: str | None = None


@dataclass
class E2dsProduct:
    """A HARPS DRS e2ds file: per-order arrays of shape (n_orders, n_pixels), observatory frame.

    ``wavelength_air_aa`` (float64, A, air), ``flux`` (extracted counts as stored), ``blaze`` (the normalised
    blaze of the ``blaze_A`` file the header names, None when it is not beside the file), ``echelle_order``
    (physical order number per row, None unless the HARPS 72-order layout), ``wavelength_source`` (where the
    wavelengths came from), ``header``, ``path``, ``meta`` (as for ``read_harps``).
    """

    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    blaze: np.ndarray | None
    echelle_order: np.ndarray | None
    wavelength_source: str
    header: fits.Header
    path: Path
    meta: dict


def read_harps(path):
    """Read an ADP, DRS s1d or ESPRESSO-pipeline S1D spectrum into a ``HarpsProduct``.

    Raises ``HarpsFormatError(path, reason)`` for anything that is not a readable product of these layouts.
    """
    return _with_fits(path, _read_spectrum)


def read_e2ds(path):
    """Read a HARPS DRS e2ds file (per-order flux) with its wavelength solution and blaze into an ``E2dsProduct``."""
    return _with_fits(path, _read_e2ds)


def detect_layout(hdul):
    """Layout of an open FITS file: ``"adp"``, ``"s1d"``, ``"S1D"``, ``"e2ds"``, or None if not a HARPS product.

    Reads headers only. Recognises the file by its primary header (``INSTRUME`` HARPS/ESPRESSO, then
    ``PRODCATG``, ``ESO PRO CATG``, ``NAXIS``) and, for tables without those markers, by the column names.
    """
    primary = hdul[0].header
    if _string(primary, "INSTRUME", default="").upper() not in SUPPORTED_INSTRUMENTS:
        return None
    if _string(primary, "PRODCATG", default="").upper().startswith("SCIENCE.SPECTRUM"):
        return "adp"
    if _string(primary, "ESO PRO CATG", default="").upper().startswith("S1D"):
        return "S1D"
    table = _first_table(hdul)
    if table is not None:
        names = {name.lower() for name in table.columns.names}
        return "adp" if "wave" in names else "S1D" if "wavelength" in names else None
    naxis = primary.get("NAXIS")
    if naxis == 1 and "CRVAL1" in primary and "CDELT1" in primary:
        return "s1d"
    if naxis == 2 and _string(primary, "ESO DPR CATG", default="SCIENCE").upper() != "CALIB":
        return "e2ds"
    return None


def header_meta(header, product):
    """Metadata of a primary header under the project's parameter names (see the module table)."""
    lat, lon, elevation = (_number(header, *telescope_keywords(key)) for key in ("GEOLAT", "GEOLON", "GEOELEV"))
    telescope = _string(header, "TELESCOP")
    site = site_from_coordinates(lat, lon) if lat is not None else site_from_telescope(telescope)
    default_frame = "observatory" if product == "e2ds" else "barycentric"
    return {
        "instrument": _string(header, "INSTRUME"),
        "site": site,
        "telescope": telescope,
        "object": _string(header, "OBJECT", "ESO OBS TARG NAME"),
        "ra_deg": _number(header, "RA"),
        "dec_deg": _number(header, "DEC"),
        "mjd_utc": _number(header, "MJD-OBS"),
        "exptime_s": _number(header, "EXPTIME"),
        "berv_kms": _number(header, "ESO DRS BERV", "ESO QC BERV"),
        "airmass": recorded("airmass", _number(header, *telescope_keywords("AIRM START"))),
        "seeing_arcsec": recorded("seeing_arcsec", _number(header, *telescope_keywords("AMBI FWHM START"))),
        "pwv_mm": recorded("pwv_mm", _number(header, *telescope_keywords("AMBI IWV START"))),
        "snr_550": _number(header, "ESO DRS SPE EXT SN50"),
        "snr_adp": _number(header, "SNR"),
        "gain_e_per_adu": _number(header, "GAIN", "ESO DRS CCD CONAD"),
        "read_noise_e": _number(header, "DETRON", "ESO DRS CCD SIGDET"),
        "site_lat_deg": lat,
        "site_lon_deg": lon,
        "site_elevation_m": elevation,
        "frame": _FRAMES.get(_string(header, "SPECSYS", default="").upper(), default_frame),
        "pipeline": _pipeline(header, product),
        "product": product,
    }


def _with_fits(path, read):
    """Open ``path`` and apply ``read(hdul, path)``, turning every low-level failure into HarpsFormatError."""
    path = Path(path)
    if not path.is_file():
        raise HarpsFormatError(path, "no such file")
    failure = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                result = read(hdul, path)
        except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError) as exc:
            failure = exc
    truncated = [warning for warning in caught if "truncated" in str(warning.message)]
    if truncated:
        raise HarpsFormatError(path, f"file is truncated ({truncated[0].message})") from failure
    if failure is not None:
        raise HarpsFormatError(path, f"not a readable FITS file ({type(failure).__name__}: {failure})") from failure
    for warning in caught:
        warnings.warn(warning.message, warning.category, stacklevel=3)
    return result


def _read_spectrum(hdul, path):
    layout = detect_layout(hdul)
    if layout == "e2ds":
        raise HarpsFormatError(path, "is a per-order e2ds image, not a 1-D spectrum: read it with read_e2ds")
    if layout is None:
        raise HarpsFormatError(path, _not_harps_reason(hdul))
    read_arrays = {"adp": _adp_arrays, "s1d": _s1d_arrays, "S1D": _s1d_table_arrays}[layout]
    wavelength, flux, error, quality, flux_unit = read_arrays(hdul, path)
    _check_spectrum(path, wavelength, flux, error, quality)
    if error is not None and np.isnan(error).all():
        error = None
    header = hdul[0].header.copy()
    return HarpsProduct(
        wavelength_air_aa=wavelength,
        flux=flux,
        error=error,
        header=header,
        path=path,
        meta=header_meta(header, layout),
        truth=read_truth(header),
        quality=quality,
        flux_unit=flux_unit,
    )


def _adp_arrays(hdul, path):
    table = _spectrum_table(hdul, path, "ADP")
    if len(table.data) != 1:
        raise HarpsFormatError(path, f"ADP table {table.name!r} has {len(table.data)} rows, expected 1")
    columns = _columns(table)
    wave_name = "WAVE_AIR" if "WAVE_AIR" in columns else "WAVE"
    wave = _column(table, columns, wave_name, path, row=0)
    wavelength = wave.astype(np.float64) * _to_angstrom(table.columns[columns[wave_name]].unit, path, wave_name)
    flux = _column(table, columns, "FLUX", path, row=0)
    error = _column(table, columns, "ERR", path, row=0) if "ERR" in columns else None
    quality = _column(table, columns, "QUAL", path, row=0) if "QUAL" in columns else None
    return wavelength, flux, error, quality, table.columns[columns["FLUX"]].unit


def _s1d_arrays(hdul, path):
    primary = hdul[0]
    header = primary.header
    try:
        crval, cdelt, crpix = (float(header.get(key, default)) for key, default in
                               (("CRVAL1", None), ("CDELT1", None), ("CRPIX1", 1.0)))
    except (TypeError, ValueError) as exc:
        raise HarpsFormatError(path, f"s1d wavelength keywords CRVAL1/CDELT1/CRPIX1 are not numbers ({exc})") from exc
    if primary.data is None:
        raise HarpsFormatError(path, "s1d primary HDU holds no data")
    flux = _native(primary.data)
    scale = _to_angstrom(header.get("CUNIT1"), path, "CUNIT1")
    wavelength = (crval + cdelt * (np.arange(flux.size) + 1.0 - crpix)) * scale
    return wavelength, flux, None, None, _string(header, "BUNIT")


def _s1d_table_arrays(hdul, path):
    table = _spectrum_table(hdul, path, "S1D")
    columns = _columns(table)
    if "WAVELENGTH_AIR" in columns:
        wavelength = _column(table, columns, "WAVELENGTH_AIR", path).astype(np.float64)
    else:
        wavelength = vacuum_to_air(_column(table, columns, "WAVELENGTH", path))
    flux = _column(table, columns, "FLUX", path)
    error = _column(table, columns, "ERROR", path) if "ERROR" in columns else None
    quality = _column(table, columns, "QUALITY", path) if "QUALITY" in columns else None
    return wavelength, flux, error, quality, table.columns[columns["FLUX"]].unit


def _read_e2ds(hdul, path):
    layout = detect_layout(hdul)
    if layout in SPECTRUM_LAYOUTS:
        raise HarpsFormatError(path, f"is a 1-D {layout} spectrum, not an e2ds image: read it with read_harps")
    if layout is None:
        raise HarpsFormatError(path, _not_harps_reason(hdul, expected="HARPS e2ds product"))
    header = hdul[0].header.copy()
    flux = _native(hdul[0].data)
    wavelength, source = _e2ds_wavelength(header, path, flux.shape)
    blaze_name = _string(header, "ESO DRS BLAZE FILE")
    blaze = _calibration_image(path, blaze_name, flux.shape) if blaze_name else None
    echelle_order = HARPS_ECHELLE_ORDERS.copy() if (
        _string(header, "INSTRUME") == "HARPS" and flux.shape[0] == HARPS_ECHELLE_ORDERS.size
    ) else None
    return E2dsProduct(
        wavelength_air_aa=wavelength,
        flux=flux,
        blaze=blaze,
        echelle_order=echelle_order,
        wavelength_source=source,
        header=header,
        path=path,
        meta=header_meta(header, "e2ds"),
    )


def _e2ds_wavelength(header, path, shape):
    """Wavelengths (A, air) per order from the header polynomial, else from the ``wave_A`` file beside ``path``."""
    n_orders, n_pixels = shape
    degree = header.get("ESO DRS CAL TH DEG LL")
    keys = [f"ESO DRS CAL TH COEFF LL{i}" for i in range(n_orders * (degree + 1))] if isinstance(degree, int) else []
    if keys and all(key in header for key in keys):
        coefficients = np.array([float(header[key]) for key in keys]).reshape(n_orders, degree + 1)
        pixel = np.arange(n_pixels, dtype=np.float64)
        wavelength = np.polynomial.polynomial.polyval(pixel, coefficients.T)
        return wavelength, "header polynomial ESO DRS CAL TH COEFF LL*"
    wave_name = _string(header, "ESO DRS CAL TH FILE")
    if wave_name is None:
        raise HarpsFormatError(path, "e2ds header has neither the wavelength polynomial nor a wave_A file name")
    wavelength = _calibration_image(path, wave_name, shape)
    if wavelength is None:
        raise HarpsFormatError(path, f"e2ds header has no wavelength polynomial and {wave_name} is not beside it")
    return wavelength.astype(np.float64), wave_name


def _calibration_image(path, name, shape):
    """The image of calibration file ``name`` in ``path``'s folder (None if absent); shape must match."""
    calibration = path.parent / Path(name).name
    if not calibration.is_file():
        return None
    image = _with_fits(calibration, lambda hdul, _: _native(hdul[0].data))
    if image is None or image.shape != shape:
        raise HarpsFormatError(calibration, f"calibration image shape {getattr(image, 'shape', None)} != {shape}")
    return image


def _check_spectrum(path, wavelength, flux, error, quality):
    if flux.ndim != 1 or flux.size < 2:
        raise HarpsFormatError(path, f"flux must be a 1-D array of at least 2 pixels, got shape {flux.shape}")
    for name, array in (("wavelength", wavelength), ("error", error), ("quality", quality)):
        if array is not None and array.shape != flux.shape:
            raise HarpsFormatError(path, f"{name} has shape {array.shape} but flux has {flux.shape}")
    if not np.isfinite(wavelength).all():
        raise HarpsFormatError(path, "wavelengths contain NaN or infinite values")
    if not (np.diff(wavelength) > 0).all():
        raise HarpsFormatError(path, "wavelengths are not strictly increasing")
    if not np.isfinite(flux).any():
        raise HarpsFormatError(path, "flux has no finite value (all NaN)")


def _not_harps_reason(hdul, expected="HARPS/ESPRESSO spectrum"):
    instrument = hdul[0].header.get("INSTRUME")
    if instrument is None:
        return f"not a {expected}: primary header has no INSTRUME keyword"
    if str(instrument).strip().upper() not in SUPPORTED_INSTRUMENTS:
        return f"not a {expected}: INSTRUME = {instrument!r} (supported: {', '.join(SUPPORTED_INSTRUMENTS)})"
    category = _string(hdul[0].header, "ESO DPR CATG", default="")
    if category.upper() == "CALIB":
        return f"not a {expected}: a calibration frame (ESO DPR CATG = {category!r})"
    return (f"not a {expected}: no recognised layout (ADP table with WAVE/FLUX, s1d image with CRVAL1/CDELT1, "
            f"S1D table with wavelength/flux, e2ds image); HDUs: {[type(hdu).__name__ for hdu in hdul]}")


def _first_table(hdul):
    return next((hdu for hdu in hdul[1:] if isinstance(hdu, fits.BinTableHDU)), None)


def _spectrum_table(hdul, path, layout):
    table = _first_table(hdul)
    if table is None:
        raise HarpsFormatError(path, f"{layout} file has no binary table extension (truncated or incomplete?)")
    return table


def _columns(table):
    """Upper-cased column name -> the name as written."""
    return {name.upper(): name for name in table.columns.names}


def _column(table, columns, name, path, row=None):
    if name not in columns:
        raise HarpsFormatError(
            path, f"table {table.name!r} has no {name} column (columns: {', '.join(table.columns.names)})"
        )
    data = table.data[columns[name]]
    return _native(data if row is None else data[row])


def _native(array):
    """A copy of ``array`` in native byte order, same values bit for bit."""
    array = np.asarray(array)
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def _to_angstrom(unit, path, what):
    """Factor from ``unit`` (a FITS unit string; None means A) to Angstrom."""
    if unit is None or not str(unit).strip():
        return 1.0
    try:
        return u.Unit(str(unit).strip()).to(u.AA)
    except (ValueError, u.UnitConversionError) as exc:
        raise HarpsFormatError(path, f"{what} unit {unit!r} is not a wavelength unit") from exc


def _number(header, *keys):
    """First of ``keys`` present in ``header`` with a numeric value, as float; None if none is."""
    for key in keys:
        value = header.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _string(header, *keys, default=None):
    """First of ``keys`` present with a non-empty string value, stripped; ``default`` otherwise."""
    for key in keys:
        value = header.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default


def _pipeline(header, product):
    if product == "adp":
        software = _string(header, "PROCSOFT")
        return f"ESO Phase-3 ADP ({software})" if software else "ESO Phase-3 ADP"
    if product in ("s1d", "e2ds"):
        version = _string(header, "ESO DRS VERSION", default="")
        version = version[len("HARPS_"):] if version.upper().startswith("HARPS_") else version
        return " ".join(part for part in ("HARPS DRS", version, product) if part)
    pipe_id = _string(header, "ESO PRO REC1 PIPE ID", default="")
    return " ".join(part for part in (pipe_id.replace("/", " "), "S1D") if part)
