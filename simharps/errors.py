"""Exceptions raised by simharps: one class per kind of bad input, all deriving from SimharpsError."""


class SimharpsError(Exception):
    """Base class of every error simharps raises on purpose."""


class FileFormatError(SimharpsError):
    """A file simharps reads is missing, truncated or not what it should be; the message names it and the reason."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class HarpsFormatError(FileFormatError):
    """A file is not a readable HARPS/ESPRESSO archive product."""


class GridFileError(FileFormatError):
    """A file of a spectral grid (PHOENIX HiRes, generic FITS grid) is missing or unreadable."""


class ParameterError(SimharpsError, ValueError):
    """A physical parameter is outside its supported range; the message names it and the valid range."""
