"""The scenario layer's exception: one bad-scenario error that names the file, the line and the fix."""

import difflib

from simharps.errors import SimharpsError


def suggest(word, choices, label):
    """Message tail naming the valid ``choices`` under ``label``, led by the one closest to ``word`` if any is close.

    ``suggest('tef_k', ['teff_k', 'vmag'], 'drawable')`` -> ``"; did you mean 'teff_k'? Drawable: teff_k, vmag"``.
    """
    choices = [str(choice) for choice in choices]
    listing = f"{label}: {', '.join(choices)}"
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f"; did you mean {close[0]!r}? {listing[0].upper()}{listing[1:]}" if close else f"; {listing}"


class ScenarioError(SimharpsError, ValueError):
    """A scenario file is invalid or cannot be sampled.

    ``path`` (the file, or None for an in-memory scenario), ``line`` (1-based, or None),
    ``location`` (dotted key path inside the file, e.g. ``population.per_target.teff_k.uniform.high``)
    and ``reason`` (what is wrong and how to fix it) are kept as attributes; ``str(error)`` joins them
    into one message: ``FILE, line N (LOCATION): REASON``.
    """

    def __init__(self, reason, *, path=None, line=None, location=None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        self.location = location
        where = self.path if self.path is not None else "<scenario>"
        if line is not None:
            where += f", line {line}"
        if location:
            where += f" ({location})"
        super().__init__(f"{where}: {reason}")
