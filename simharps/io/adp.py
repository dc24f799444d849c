"""Writer of spectra in the ESO Phase-3 ADP layout of the HARPS archive (what ``read_harps`` reads back exactly).

Layout (as in the archive's ``ADP.2014-09-16T11:04:45.123.fits``)
------------------------------------------------------------------
* Primary HDU: no data; the header keywords below, ``PROCSOFT = 'simharps <version>'``,
  ``PRODCATG = 'SCIENCE.SPECTRUM'``, ``SPECSYS``, ``WAVELMIN``/``WAVELMAX``/``SPEC_BIN`` in **nm**, and the
  simulation truth as ``HIERARCH SIMHARPS <NAME>`` cards (``simharps.io.keywords``).
* Extension ``SPECTRUM``: a binary table of **one row** with array columns ``WAVE`` (``nD``, ``TUNIT``
  Angstrom, air), ``FLUX`` and ``ERR`` (``nE`` like the archive when given float32 arrays, ``nD`` for float64
  so nothing is rounded; ``TUNIT`` ``flux_unit``, default adu), with the archive's ``TUTYP``/``TUCD``/``TCOMM``
  descriptions, ``NELEM``, ``SPEC_VAL``, ``SPEC_BW``, ``TMID``, ``TELAPSE``, ``TDMIN``/``TDMAX``.
  A missing error is written as NaN, as the archive does, and read back as None.

Metadata keywords (``meta`` name -> keyword; a None or absent entry writes no card)
------------------------------------------------------------------------------------
======================  ====================================================================================
instrument              ``INSTRUME`` (HARPS, the default, or ESPRESSO)
site                    ``TELESCOP`` (ESO-3.6 / ESO-VLT-U3) and ``ESO TEL GEOLAT/GEOLON/GEOELEV`` defaults
telescope               ``TELESCOP`` (overrides the site's)
object                  ``OBJECT``
ra_deg, dec_deg         ``RA``, ``DEC`` (with ``EQUINOX = 2000``, ``RADECSYS = 'FK5'``)
mjd_utc                 ``MJD-OBS``; also ``DATE-OBS`` (ISOT), ``MJD-END`` and table ``TMID`` with exptime_s
exptime_s               ``EXPTIME``, ``TEXPTIME``; table ``TELAPSE``
berv_kms                ``HIERARCH ESO DRS BERV``
snr_550                 ``HIERARCH ESO DRS SPE EXT SN50``
snr_adp                 ``SNR`` (the archive's: median over the orders of the DRS order-centre S/N)
airmass                 ``HIERARCH ESO TEL AIRM START``
seeing_arcsec           ``HIERARCH ESO TEL AMBI FWHM START``
pwv_mm                  ``HIERARCH ESO TEL AMBI IWV START``
gain_e_per_adu          ``GAIN``, ``HIERARCH ESO DRS CCD CONAD``
read_noise_e            ``DETRON``, ``HIERARCH ESO DRS CCD SIGDET``
site_lat_deg, ...       ``HIERARCH ESO TEL GEOLAT``, ``GEOLON``, ``GEOELEV`` (``site_lon_deg``, ``site_elevation_m``)
frame                   ``SPECSYS`` (barycentric -> BARYCENT, observatory -> TOPOCENT; default barycentric)
pipeline, product       accepted and ignored: ``read_harps`` derives them from the file
======================  ====================================================================================

Floats are written with their shortest round-trip representation, so every value reads back bit for bit.
``airmass`` of a simulated spectrum is the mid-exposure value; it is stored where the archive keeps the start
value, the convention the project's parameter table states.

Example
-------
>>> from simharps.io import write_adp, read_harps
>>> write_adp("sim.fits", wavelength_air_aa, flux, error, {"object": "sun", "berv_kms": 12.3},
...           truth={"teff_k": 5772.0, "target_id": "sun"})
>>> read_harps("sim.fits").truth["teff_k"]
5772.0
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.time import Time

from simharps import __version__
from simharps.errors import ParameterError, SimharpsError
from simharps.io.harps import SUPPORTED_INSTRUMENTS
from simharps.io.keywords import TRUTH_PREFIX, SITES, make_card, python_scalar, site_from_coordinates, write_truth

META_KEYWORDS = {
    "ra_deg": (("RA", "[deg] RA (J2000)"),),
    "dec_deg": (("DEC", "[deg] DEC (J2000)"),),
    "exptime_s": (("EXPTIME", "[s] Total integration time"), ("TEXPTIME", "[s] Total integration time")),
    "mjd_utc": (("MJD-OBS", "[d] MJD start"),),
    "snr_adp": (("SNR", "Median signal to noise"),),
    "gain_e_per_adu": (("GAIN", "Conversion from electrons to ADU"), ("ESO DRS CCD CONAD", "CCD conv factor [e-/ADU]")),
    "read_noise_e": (("DETRON", "Readout noise per output (e-)"), ("ESO DRS CCD SIGDET", "CCD Readout Noise [e-]")),
    "berv_kms": (("ESO DRS BERV", "Barycentric Earth Radial Velocity"),),
    "snr_550": (("ESO DRS SPE EXT SN50", "S_N order center50"),),
    "airmass": (("ESO TEL AIRM START", "Airmass at start"),),
    "seeing_arcsec": (("ESO TEL AMBI FWHM START", "[arcsec] Observatory seeing"),),
    "pwv_mm": (("ESO TEL AMBI IWV START", "[mm] Integrated water vapour"),),
    "site_lat_deg": (("ESO TEL GEOLAT", "Tel geo latitude (+=North) (deg)"),),
    "site_lon_deg": (("ESO TEL GEOLON", "Tel geo longitude (+=East) (deg)"),),
    "site_elevation_m": (("ESO TEL GEOELEV", "Elevation above sea level (m)"),),
}
"""Numeric ``meta`` names and the (keyword, comment) cards each is written to."""

STRING_META = ("instrument", "site", "telescope", "object", "frame")
"""String ``meta`` names ``write_adp`` accepts."""

DERIVED_META = ("pipeline", "product")
"""``meta`` names ``read_harps`` derives from the file; ``write_adp`` accepts and ignores them."""

FITS_BLOCK_BYTES = 2880
"""FITS files are made of 2880-byte blocks; data are zero-padded to a whole block."""

_SPECSYS = {"barycentric": "BARYCENT", "observatory": "TOPOCENT"}
_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM", "XTENSION",
               "BSCALE", "BZERO", "END"}


def write_adp(path, wavelength_air_aa, flux, error, meta, truth=None, header=None, *, flux_unit="adu",
              overwrite=False):
    """Write a 1-D spectrum as an ESO Phase-3 ADP file; return its path.

    ``wavelength_air_aa`` (A, air, strictly increasing), ``flux`` and ``error`` (None: written as NaN) are 1-D
    arrays of one length. ``meta``: header metadata under the parameter names of the module table; ``truth``:
    the simulation's parameters, stored as ``HIERARCH SIMHARPS`` cards; ``header``: extra primary-header cards
    (an ``astropy.io.fits.Header`` or a mapping) written first, so that ``meta`` overrides them; structural
    cards and any old ``SIMHARPS`` truth cards in it are dropped. Raises ``ParameterError`` on bad input.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"path {path} exists; pass overwrite=True to replace it")
    wavelength, flux, error = _checked_arrays(wavelength_air_aa, flux, error)
    meta = _checked_meta(meta)
    primary = _primary_header(wavelength, meta, header)
    write_truth(primary, dict(truth or {}))
    table = _spectrum_table(wavelength, flux, error, meta, flux_unit)
    try:
        fits.HDUList([fits.PrimaryHDU(header=primary), table]).writeto(path, overwrite=overwrite, checksum=True)
    except VerifyError as exc:
        raise ParameterError(f"header for {path} is not valid FITS: {exc}") from exc
    except OSError as exc:
        raise SimharpsError(f"cannot write {path}: {exc}") from exc
    return path


def _float_array(name, array):
    """``array`` as float32 if it is float32, else float64 (nothing rounded); must be 1-D."""
    array = np.asarray(array)
    if array.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D array, got shape {array.shape}")
    dtype = np.float32 if array.dtype == np.float32 else np.float64
    return array.astype(dtype, copy=False)


def _checked_arrays(wavelength_air_aa, flux, error):
    wavelength = _float_array("wavelength_air_aa", wavelength_air_aa).astype(np.float64, copy=False)
    flux = _float_array("flux", flux)
    if wavelength.size < 2 or flux.shape != wavelength.shape:
        raise ParameterError(
            f"wavelength_air_aa and flux must have one length >= 2, got {wavelength.size} and {flux.size}"
        )
    if not np.isfinite(wavelength).all() or not (np.diff(wavelength) > 0).all():
        raise ParameterError("wavelength_air_aa must be finite and strictly increasing")
    if not np.isfinite(flux).any():
        raise ParameterError("flux has no finite value")
    if error is None:
        error = np.full_like(flux, np.nan)
    else:
        error = _float_array("error", error)
        if error.shape != flux.shape:
            raise ParameterError(f"error has {error.size} pixels but flux has {flux.size}")
        if (error < 0).any():
            raise ParameterError("error must be >= 0 (NaN where unknown)")
    return wavelength, flux, error


def _checked_meta(meta):
    meta = dict(meta or {})
    unknown = set(meta) - set(META_KEYWORDS) - set(STRING_META) - set(DERIVED_META)
    if unknown:
        raise ParameterError(
            f"meta has unknown names {sorted(unknown)}; write_adp takes "
            f"{sorted(set(META_KEYWORDS) | set(STRING_META))} (simulation parameters go in truth)"
        )
    checked = {}
    for name, value in meta.items():
        if value is None or name in DERIVED_META:
            continue
        if name in STRING_META:
            if not isinstance(value, str):
                raise ParameterError(f"meta {name} must be a string, got {value!r}")
            checked[name] = value
        else:
            value = python_scalar(f"meta {name}", value)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ParameterError(f"meta {name} must be a finite number, got {value!r}")
            checked[name] = float(value)
    checked.setdefault("instrument", "HARPS")
    checked.setdefault("frame", "barycentric")
    if checked["instrument"] not in SUPPORTED_INSTRUMENTS:
        raise ParameterError(f"meta instrument {checked['instrument']!r} not in {SUPPORTED_INSTRUMENTS}")
    if checked["frame"] not in _SPECSYS:
        raise ParameterError(f"meta frame {checked['frame']!r} not in {sorted(_SPECSYS)}")
    site = checked.get("site")
    if site is not None:
        if site not in SITES:
            raise ParameterError(f"meta site {site!r} not in {sorted(SITES)}")
        given = site_from_coordinates(checked.get("site_lat_deg"), checked.get("site_lon_deg"))
        if "site_lat_deg" in checked and given != site:
            raise ParameterError(
                f"meta site {site!r} disagrees with site_lat_deg/site_lon_deg "
                f"{checked['site_lat_deg']}, {checked.get('site_lon_deg')}"
            )
        for name in ("site_lat_deg", "site_lon_deg", "site_elevation_m"):
            checked.setdefault(name, SITES[site][name[len("site_"):]])
        checked.setdefault("telescope", SITES[site]["telescope"])
    return checked


def _primary_header(wavelength, meta, extra):
    header = fits.Header()
    if extra is not None:
        extra = extra if isinstance(extra, fits.Header) else fits.Header(list(dict(extra).items()))
        for card in extra.cards:
            keyword = card.keyword
            if keyword.rstrip("0123456789") in _STRUCTURAL or keyword.startswith(TRUTH_PREFIX + " "):
                continue
            header.append(card)
    cards = [
        make_card("INSTRUME", meta["instrument"], "Instrument used"),
        make_card("ORIGIN", "simharps", "written by simharps"),
        make_card("PROCSOFT", f"simharps {__version__}", "Software that wrote this file"),
        make_card("PRODCATG", "SCIENCE.SPECTRUM", "Data product category"),
        make_card("SPECSYS", _SPECSYS[meta["frame"]], "Reference frame"),
        make_card("WAVELMIN", round(wavelength[0] / 10.0, 9), "[nm] Minimum wavelength"),
        make_card("WAVELMAX", round(wavelength[-1] / 10.0, 9), "[nm] Maximum wavelength"),
        make_card("SPEC_BIN", _significant(np.median(np.diff(wavelength)) / 10.0), "[nm] Wavelength bin size"),
    ]
    for name, keyword, comment in (("telescope", "TELESCOP", "ESO Telescope Name"), ("object", "OBJECT", "Object")):
        if name in meta:
            cards.append(make_card(keyword, meta[name], comment))
    if "ra_deg" in meta or "dec_deg" in meta:
        cards += [make_card("EQUINOX", 2000.0, "Standard FK5 (years)"),
                  make_card("RADECSYS", "FK5", "Coordinate reference frame")]
    if "mjd_utc" in meta:
        start = Time(meta["mjd_utc"], format="mjd", scale="utc")
        start.precision = 3
        cards.append(make_card("DATE-OBS", start.isot, "Date of observation"))
        if "exptime_s" in meta:
            cards.append(make_card("MJD-END", meta["mjd_utc"] + meta["exptime_s"] / 86400.0, "[d] End of observation"))
    for name, keywords in META_KEYWORDS.items():
        if name in meta:
            cards += [make_card(keyword, meta[name], comment) for keyword, comment in keywords]
    for card in cards:
        while card.keyword in header:
            del header[card.keyword]
        header.append(card)
    return header


def _spectrum_table(wavelength, flux, error, meta, flux_unit):
    n = wavelength.size
    table = _one_row_table((("WAVE", wavelength, "Angstrom"), ("FLUX", flux, flux_unit), ("ERR", error, flux_unit)))
    finite_error = np.isfinite(error).any()
    finite_flux = flux[np.isfinite(flux)]
    described = [
        ("VOCLASS", "SPECTRUM v1.0", "VO Data Model"),
        ("INHERIT", True, "Primary HDU inherited"),
        ("NELEM", n, "Length of the data arrays"),
        ("SPEC_VAL", _significant((wavelength[0] + wavelength[-1]) / 20.0), "[nm] Mean wavelength"),
        ("SPEC_BW", _significant((wavelength[-1] - wavelength[0]) / 10.0), "[nm] Bandpass width"),
        ("TUTYP1", "Spectrum.Data.SpectralAxis.Value", None),
        ("TUCD1", "em.wl", None),
        ("TCOMM1", "Air wavelength", None),
        ("TDMIN1", float(wavelength[0]), None),
        ("TDMAX1", float(wavelength[-1]), None),
        ("TUTYP2", "Spectrum.Data.FluxAxis.Value", None),
        ("TUCD2", "phot.flux.density;em.wl;stat.uncalib", None),
        ("TCOMM2", "Written by simharps", None),
        ("TDMIN2", float(finite_flux.min()), None),
        ("TDMAX2", float(finite_flux.max()), None),
        ("TUTYP3", "Spectrum.Data.FluxAxis.Accuracy.StatError", None),
        ("TUCD3", "stat.error;phot.flux.density;em.wl;stat.uncalib", None),
        ("TCOMM3", "1-sigma flux error" if finite_error else "Error spectrum not available, filled with NaN", None),
    ]
    if "object" in meta:
        described.append(("OBJECT", meta["object"], "Object"))
    for name, keyword, comment in (("ra_deg", "RA", "[deg] Right ascension"), ("dec_deg", "DEC", "[deg] Declination"),
                                   ("exptime_s", "TELAPSE", "[s] Total elapsed time")):
        if name in meta:
            described.append((keyword, meta[name], comment))
    if "mjd_utc" in meta and "exptime_s" in meta:
        described.append(("TMID", meta["mjd_utc"] + meta["exptime_s"] / 172800.0, "[d] MJD mid exposure"))
    for keyword, value, comment in described:
        table.header.append(make_card(keyword, value, comment or ""))
    return table


def _one_row_table(columns):
    """A ``SPECTRUM`` binary table HDU of one row from (name, float array, unit) triples.

    The HDU is parsed from its own FITS bytes (header cards + big-endian data) rather than built with
    ``BinTableHDU.from_columns``: astropy 8 byte-swaps an in-memory native-endian array column element by
    element in Python when writing (~1 s for a 313k-pixel spectrum), while data parsed from bytes is already
    big-endian and is written as is (a few ms).
    """
    header = fits.Header([("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2),
                          ("NAXIS1", sum(array.nbytes for _, array, _ in columns)), ("NAXIS2", 1),
                          ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", len(columns))])
    for i, (name, array, unit) in enumerate(columns, start=1):
        header[f"TTYPE{i}"] = name
        header[f"TFORM{i}"] = f"{array.size}{'E' if array.dtype == np.float32 else 'D'}"
        if unit:
            header[f"TUNIT{i}"] = unit
    header["EXTNAME"] = "SPECTRUM"
    data = b"".join(array.astype(array.dtype.newbyteorder(">")).tobytes() for _, array, _ in columns)
    padding = b"\0" * (-len(data) % FITS_BLOCK_BYTES)
    return fits.BinTableHDU.fromstring(header.tostring().encode("ascii") + data + padding)


def _significant(value, digits=10):
    """``value`` rounded to ``digits`` significant digits (header cosmetics for derived nm keywords)."""
    return float(f"{float(value):.{digits}g}")
