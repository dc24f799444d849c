"""Train / validation / test split by whole groups (targets or nights): no star or night is in two splits.

Groups are ``target_id`` (``by: target``) or the La Silla night (``by: night``): ``night_index(mjd_utc)`` =
floor(MJD - 0.5 - 4.715 h / 24 h), i.e. nights run from local noon to local noon at La Silla (70.73 deg W, local
mean solar time = UTC - 4.715 h), so all exposures of one night share an index. The unique groups of the usable
spectra are shuffled with ``numpy.random.default_rng(seed)`` and dealt to the splits in proportion to the
fractions (counted in groups, at least one group for every split with a fraction > 0). Spectra excluded by the
quality filters get the label ``excluded``. A split with a fraction > 0 that gets no group is an error.
"""

import numpy as np

LABELS = ("train", "validation", "test", "excluded")
LA_SILLA_UTC_OFFSET_H = -4.715


def night_index(mjd_utc):
    """Integer night label (local noon to local noon at La Silla) of each MJD (UTC)."""
    return np.floor(np.asarray(mjd_utc, dtype=np.float64) - 0.5 + LA_SILLA_UTC_OFFSET_H / 24.0).astype(np.int64)


def groups_of(table, by):
    """Group label of each row: ``target_id`` text or night index."""
    if by == "target":
        if "target_id" not in table.colnames:
            raise ValueError("split by target needs a target_id column in the dataset table")
        return np.asarray(table["target_id"]).astype(str)
    if "mjd_utc" not in table.colnames:
        raise ValueError("split by night needs an mjd_utc column in the dataset table")
    mjd = np.asarray(table["mjd_utc"], dtype=np.float64)
    if not np.all(np.isfinite(mjd)):
        raise ValueError("split by night: some spectra have no mjd_utc")
    return night_index(mjd).astype(str)


def make_split(table, usable, config):
    """Labels (n,) from ``LABELS`` for the rows of ``table``; ``usable`` (n,) bool; ``config`` a ``SplitConfig``."""
    labels = np.full(len(table), "excluded", dtype="<U10")
    usable = np.asarray(usable, dtype=bool)
    groups = groups_of(table, config.by)
    unique = np.unique(groups[usable])
    wanted = [name for name, fraction in zip(LABELS[:3], config.fractions) if fraction > 0]
    if unique.size < len(wanted):
        raise ValueError(f"split by {config.by}: {unique.size} usable group(s) cannot fill the {len(wanted)} splits "
                         f"with a fraction > 0 ({', '.join(wanted)}); add {config.by}s or set a fraction to 0")
    order = np.random.default_rng(config.seed).permutation(unique)
    counts = np.floor(np.asarray(config.fractions) * unique.size).astype(int)
    counts = np.where((np.asarray(config.fractions) > 0) & (counts == 0), 1, counts)
    while counts.sum() > unique.size:                  # minimum-one rounding overshot: take from the largest
        counts[np.argmax(counts)] -= 1
    counts[0] += unique.size - counts.sum()            # the rest goes to training
    bounds = np.concatenate(([0], np.cumsum(counts)))
    for name, first, last in zip(LABELS[:3], bounds[:-1], bounds[1:]):
        labels[usable & np.isin(groups, order[first:last])] = name
    for name, fraction in zip(LABELS[:3], config.fractions):
        if fraction > 0 and not np.any(labels == name):
            raise ValueError(f"split {name!r} is empty (fraction {fraction}); add {config.by}s or set it to 0")
    return labels
