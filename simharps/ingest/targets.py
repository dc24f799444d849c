"""Unique targets of a set of real spectra (``target_id``, ``epoch``) and the optional join of literature labels.

Sky position (primary)
----------------------
Each spectrum's target position is the header's catalogue position ``ESO TEL[n] TARG ALPHA/DELTA`` (ESO
sexagesimal numbers HHMMSS.sss / +-DDMMSS.ss at ``TARG EPOCH``, usually 2000.0), moved to J2000.0 with the
proper motion ``TARG PMA`` (mu_alpha cos delta) and ``TARG PMD`` in arcsec/yr where the epoch differs; PMA is
mu_alpha cos delta as Gl581's -1.22455 "/yr shows (SIMBAD: -1221 mas/yr in mu_alpha cos delta). Without those
keywords the pointing ``RA``/``DEC`` is used as it is (``coord_source`` = "pointing"): for a high
proper-motion star that drifts by mu x (date - 2000), e.g. 12" for Gl581 in 2010, which is why the catalogue
position comes first. Spectra are linked when their positions are within ``tolerance_arcsec`` (10"), and
targets are the connected groups (friends of friends: a chain of links can join positions further apart
than the tolerance, which only happens in crowded fields such as cluster cores; lower the tolerance there).

Names (secondary)
-----------------
``normalise_name``: upper case; spaces, underscores and dots removed; the Gliese prefixes ``GL``/``GJ``/
``GLIESE`` written ``GJ``; leading zeros of the number after a catalogue prefix removed. So "GJ 581", "Gl581",
"gl_581" and "GJ0581" are one name; "HIP 74995" stays another name (no cross-identification: that needs a
catalogue, and positions already join such spectra). Spectra with the same normalised name are also linked
when their positions are within ``name_tolerance_arcsec`` (120"; this catches pointing offsets and
proper-motion drifts of headers without catalogue keywords), and spectra without any position join their name.

``target_id`` is the most frequent normalised name of the group (made unique with "#2", "#3", ... if two groups
share it, numbered by their first exposure); ``epoch`` numbers a target's spectra by ``mjd_utc`` (0 = first).

Labels
------
``join_labels(rows, csv_path)`` adds ``teff_k``, ``logg_cgs``, ``mh_dex`` from a CSV with a name column (``name``,
``target``, ``object``, ``star`` or ``target_id``) and any of ``teff_k``/``teff``, ``logg_cgs``/``logg``,
``mh_dex``/``mh``/``[m/h]``/``feh``/``[fe/h]``; a CSV row applies to every spectrum of a target one of whose
spectra has that normalised name (first CSV row wins). ``label_name`` records the CSV name used.

Example
-------
>>> from simharps.ingest.targets import assign_targets, join_labels, normalise_name
>>> normalise_name("Gl 581") == normalise_name("GJ581")
True
>>> rows = assign_targets(rows, tolerance_arcsec=10.0)   # adds target_id, epoch
>>> rows = join_labels(rows, "literature.csv")           # adds teff_k, logg_cgs, mh_dex, label_name
"""

import csv
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from simharps.errors import ParameterError
from simharps.kinematics import eso_sexagesimal_deg
from simharps.sites import TELESCOPE_KEYWORD_PREFIXES

J2000 = 2000.0
_GLIESE = re.compile(r"^(GLIESE|GL|GJ)(?=\d)")
_CATALOGUE_NUMBER = re.compile(r"^([A-Z]+)0+(\d)")
LABEL_COLUMNS = {
    "teff_k": ("teff_k", "teff"),
    "logg_cgs": ("logg_cgs", "logg"),
    "mh_dex": ("mh_dex", "mh", "[m/h]", "feh", "[fe/h]", "fe_h"),
}
NAME_COLUMNS = ("name", "target", "object", "star", "target_id")


def normalise_name(name):
    """Normalised target name (see module docstring); '' for None or blank names."""
    if not isinstance(name, str):
        return ""
    text = re.sub(r"[\s_.]+", "", name.upper())
    text = _GLIESE.sub("GJ", text)
    return _CATALOGUE_NUMBER.sub(r"\1\2", text)


def _number(header, key):
    value = header.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def target_position(header, meta):
    """J2000 position of the target and its proper motion: a dict of row columns (see module docstring)."""
    for prefix in TELESCOPE_KEYWORD_PREFIXES:
        alpha, delta = _number(header, f"{prefix} TARG ALPHA"), _number(header, f"{prefix} TARG DELTA")
        if alpha is None or delta is None:
            continue
        ra, dec = eso_sexagesimal_deg(alpha, hours=True), eso_sexagesimal_deg(delta, hours=False)
        pma = _number(header, f"{prefix} TARG PMA") or 0.0
        pmd = _number(header, f"{prefix} TARG PMD") or 0.0
        years = J2000 - (_number(header, f"{prefix} TARG EPOCH") or J2000)
        dec_j2000 = dec + pmd * years / 3600.0
        cos_dec = max(math.cos(math.radians(dec)), 1e-9)
        ra_j2000 = (ra + pma * years / 3600.0 / cos_dec) % 360.0
        return {"target_ra_deg": ra_j2000, "target_dec_deg": dec_j2000, "pm_ra_cosdec_masyr": 1000.0 * pma,
                "pm_dec_masyr": 1000.0 * pmd, "coord_source": "catalogue"}
    return {"target_ra_deg": meta.get("ra_deg"), "target_dec_deg": meta.get("dec_deg"), "pm_ra_cosdec_masyr": None,
            "pm_dec_masyr": None, "coord_source": "pointing" if meta.get("ra_deg") is not None else None}


def _unit_vectors(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _chord(arcsec):
    return 2.0 * np.sin(np.radians(arcsec / 3600.0) / 2.0)


def assign_targets(rows, tolerance_arcsec=10.0, name_tolerance_arcsec=120.0):
    """Set ``target_id`` and ``epoch`` on every row (in place; also returned). See module docstring."""
    if not tolerance_arcsec > 0 or not name_tolerance_arcsec >= tolerance_arcsec:
        raise ParameterError("need tolerance_arcsec > 0 and name_tolerance_arcsec >= tolerance_arcsec, got "
                             f"{tolerance_arcsec}, {name_tolerance_arcsec}")
    n = len(rows)
    if n == 0:
        return rows
    names = [row.get("target_name") or normalise_name(row.get("object")) for row in rows]
    ra = np.array([np.nan if row.get("target_ra_deg") is None else row["target_ra_deg"] for row in rows], float)
    dec = np.array([np.nan if row.get("target_dec_deg") is None else row["target_dec_deg"] for row in rows], float)
    located = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    edges = []
    if located.size:
        xyz = _unit_vectors(ra[located], dec[located])
        pairs = cKDTree(xyz).query_pairs(_chord(tolerance_arcsec), output_type="ndarray")
        edges.append(located[pairs])
    by_name = defaultdict(list)
    for index, name in enumerate(names):
        if name:
            by_name[name].append(index)
    for members in by_name.values():
        members = np.array(members)
        has_position = np.isfinite(ra[members]) & np.isfinite(dec[members])
        with_pos, without = members[has_position], members[~has_position]
        if with_pos.size > 1:
            pairs = cKDTree(_unit_vectors(ra[with_pos], dec[with_pos])).query_pairs(
                _chord(name_tolerance_arcsec), output_type="ndarray")
            edges.append(with_pos[pairs])
        if without.size:
            anchor = members[0]
            edges.append(np.stack([np.full(without.size, anchor), without], axis=1))
    edges = np.concatenate(edges) if edges else np.zeros((0, 2), int)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)) if len(edges) else \
        coo_matrix((n, n))
    _, labels = connected_components(graph, directed=False)
    mjd = np.array([row.get("mjd_utc") if row.get("mjd_utc") is not None else np.inf for row in rows], float)
    order = sorted(range(n), key=lambda i: (mjd[i], str(rows[i].get("path", ""))))
    groups = defaultdict(list)
    for index in order:
        groups[labels[index]].append(index)
    used = Counter()
    for members in sorted(groups.values(), key=lambda m: (mjd[m[0]], str(rows[m[0]].get("path", "")))):
        counts = Counter(names[i] for i in members if names[i])
        base = counts.most_common(1)[0][0] if counts else "TARGET"  # ties: the earliest exposure's name
        used[base] += 1
        target_id = base if used[base] == 1 else f"{base}#{used[base]}"
        for epoch, index in enumerate(members):
            rows[index]["target_id"] = target_id
            rows[index]["epoch"] = epoch
    return rows


def read_labels(csv_path, columns=LABEL_COLUMNS, required=()):
    """{normalised name: (name as written, {label: float or None})} from a labels CSV (first row per name wins).

    ``columns``: label -> accepted column names (case-insensitive); ``required``: labels whose column must exist.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = {name.strip().lower(): name for name in (reader.fieldnames or [])}
            name_field = next((fields[c] for c in NAME_COLUMNS if c in fields), None)
            if name_field is None:
                raise ParameterError(f"{path}: labels CSV needs a name column (one of {', '.join(NAME_COLUMNS)}), "
                                     f"got columns {reader.fieldnames}")
            value_fields = {label: next((fields[a] for a in aliases if a in fields), None)
                            for label, aliases in columns.items()}
            if not any(value_fields.values()):
                raise ParameterError(f"{path}: labels CSV has none of the label columns "
                                     f"{', '.join(a for aliases in columns.values() for a in aliases)}")
            missing = [label for label in required if value_fields[label] is None]
            if missing:
                raise ParameterError(f"{path}: labels CSV lacks the column(s) {missing}")
            labels = {}
            for line, record in enumerate(reader, start=2):
                key = normalise_name(record.get(name_field))
                if not key or key in labels:
                    continue
                labels[key] = (record[name_field].strip(), {
                    label: _label_value(path, line, column, record.get(column)) if column else None
                    for label, column in value_fields.items()})
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the labels CSV ({exc})") from exc
    return labels


def _label_value(path, line, column, text):
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{path}, line {line}: {column} = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ParameterError(f"{path}, line {line}: {column} = {text!r} is not finite")
    return value


def join_labels(rows, csv_path):
    """Add ``teff_k``, ``logg_cgs``, ``mh_dex``, ``label_name`` to every row (None where no CSV name matches)."""
    labels = read_labels(csv_path)
    by_target = defaultdict(list)
    for row in rows:
        by_target[row.get("target_id")].append(row)
    for members in by_target.values():
        candidates = [normalise_name(row.get("object")) for row in members]
        candidates.append(normalise_name(members[0].get("target_id")))
        match = next((labels[name] for name in candidates if name in labels), None)
        for row in members:
            row["label_name"] = match[0] if match else None
            for label in LABEL_COLUMNS:
                row[label] = match[1][label] if match else None
    return rows
