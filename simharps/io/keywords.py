"""FITS keyword vocabulary of simharps: sites, "not recorded" sentinels, header cards that round-trip exactly, and the
truth codec.

Exact floats
------------
astropy formats a float card value in at most 20 characters and falls back to 16 significant digits
beyond that (``-0.012345678901234568`` or ``1.2345678901234568E-05`` lose their last digit). simharps
writes every float card from Python's shortest round-trip ``repr`` instead (FITS free format allows
it), so a header written here reads back bit-for-bit.

Truth keywords
--------------
Each entry of a simulation's ``truth`` dict is one card ``HIERARCH SIMHARPS <NAME>`` where ``<NAME>`` is
the parameter name in upper case (``teff_k`` -> ``SIMHARPS TEFF_K``, ``target_id`` ->
``SIMHARPS TARGET_ID``). Names must be lower-case snake case (``[a-z][a-z0-9_]*``), the form the
project's parameter names take, so upper-casing is undone by lower-casing. Values may be ``str``,
``float``, ``int``, ``bool`` or ``None`` (numpy scalars are converted); floats must be finite (FITS has
no NaN), strings printable ASCII without trailing spaces (FITS does not keep them). Strings longer than
one card continue on ``CONTINUE`` cards; a name must leave room for its value on one 80-character card
(``HIERARCH SIMHARPS <NAME> = <value>``: names up to ~35 characters for any float).

Example
-------
>>> from astropy.io import fits
>>> header = fits.Header()
>>> write_truth(header, {"teff_k": 5772.0, "target_id": "sun"})
>>> read_truth(header)
{'teff_k': 5772.0, 'target_id': 'sun'}
"""

import math
import numbers
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from simharps.errors import ParameterError
from simharps.sites import SITES

TRUTH_PREFIX = "SIMHARPS"
"""First token of the HIERARCH keywords that hold the simulation truth."""

SITE_MATCH_DEG = 0.05
"""Largest latitude/longitude difference (deg) at which header coordinates name a known site."""

POSITIVE_QUANTITIES = ("airmass", "seeing_arcsec")
"""Header quantities read as missing (None) at values <= 0: ESO writes -1 (or 0) when it did not record them, e.g.
the seeing ``ESO TEL AMBI FWHM START`` = -1 of every alpha Cen B header in the shared data. An airmass just below 1
is a real value rounded near the zenith and is kept."""

NON_NEGATIVE_QUANTITIES = ("pwv_mm",)
"""Header quantities read as missing (None) at values < 0 (ESO's -1)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def recorded(name, value):
    """``value`` of header quantity ``name``, or None where it is a "not recorded" sentinel (``POSITIVE_QUANTITIES``,
    ``NON_NEGATIVE_QUANTITIES``); other quantities pass unchanged."""
    if value is None:
        return None
    if name in POSITIVE_QUANTITIES and value <= 0 or name in NON_NEGATIVE_QUANTITIES and value < 0:
        return None
    return value


def site_from_coordinates(lat_deg, lon_deg):
    """Name of the known site within ``SITE_MATCH_DEG`` of (lat, lon), or None."""
    if lat_deg is None or lon_deg is None:
        return None
    for name, site in SITES.items():
        if abs(lat_deg - site["lat_deg"]) < SITE_MATCH_DEG and abs(lon_deg - site["lon_deg"]) < SITE_MATCH_DEG:
            return name
    return None


def site_from_telescope(telescope):
    """Site of an ESO ``TELESCOP`` value (``ESO-3.6``/``ESO-3P6`` -> lasilla, ``ESO-VLT-*`` -> paranal), or None."""
    if not isinstance(telescope, str):
        return None
    telescope = telescope.strip().upper()
    if telescope.startswith(("ESO-3.6", "ESO-3P6")):
        return "lasilla"
    if telescope.startswith("ESO-VLT"):
        return "paranal"
    return None


def _is_standard_keyword(keyword):
    return len(keyword) <= 8 and " " not in keyword


def card_image(keyword, value_text, comment=""):
    """An 80-character card image: standard 8-character keywords in fixed format, longer ones as HIERARCH.

    The comment is cut to fit; a keyword and value that do not fit in 80 characters raise ParameterError.
    """
    if _is_standard_keyword(keyword):
        head = f"{keyword:<8}= {value_text:>20}"
    else:
        head = f"HIERARCH {keyword} = {value_text}"
    if len(head) > 80:
        raise ParameterError(f"header keyword {keyword!r} = {value_text} does not fit in one 80-character card")
    if comment:
        head = f"{head} / {comment}"[:80]
    return head.ljust(80)


def make_card(keyword, value, comment=""):
    """A FITS card holding ``value`` exactly: floats by shortest repr, other types by astropy."""
    value = python_scalar(keyword, value)
    if isinstance(value, float):
        return fits.Card.fromstring(card_image(keyword, repr(value).upper(), comment))
    if isinstance(value, str) and value != value.rstrip(" "):
        raise ParameterError(f"header keyword {keyword!r}: FITS drops trailing spaces, so {value!r} cannot round-trip")
    if not _is_standard_keyword(keyword):
        keyword = f"HIERARCH {keyword}"
    try:  # formatting the image is what checks length and characters
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            try:
                image = fits.Card(keyword, value, comment).image
            except VerifyWarning:  # the comment does not fit beside a long keyword and value: drop it, keep the value
                image = fits.Card(keyword, value).image
        return fits.Card.fromstring(image)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"header keyword {keyword!r}: cannot store {value!r} ({exc})") from exc


def python_scalar(name, value):
    """``value`` as a plain Python str/bool/int/float/None; ParameterError for anything else or non-finite floats."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"{name} = {value}: FITS headers hold finite numbers only")
        return value
    raise ParameterError(
        f"{name} = {value!r}: header values must be str, float, int, bool or None, not {type(value).__name__}"
    )


def truth_keyword(name):
    """Header keyword (without ``HIERARCH``) holding truth parameter ``name``: ``teff_k`` -> ``SIMHARPS TEFF_K``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(f"truth parameter name {name!r} must be lower-case snake case ([a-z][a-z0-9_]*)")
    return f"{TRUTH_PREFIX} {name.upper()}"


def write_truth(header, truth):
    """Append the truth dict to ``header`` as ``HIERARCH SIMHARPS <NAME>`` cards (see module docstring)."""
    for name, value in truth.items():
        keyword = truth_keyword(name)
        header.append(make_card(keyword, python_scalar(f"truth {name}", value), "simharps truth"), end=True)


def read_truth(header):
    """The truth dict stored in ``header`` by ``write_truth`` (empty for real archive files)."""
    prefix = TRUTH_PREFIX + " "
    return {key[len(prefix):].lower(): header[key] for key in header.keys() if key.startswith(prefix)}
