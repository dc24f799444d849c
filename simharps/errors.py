"""Exceptions raised by simharps: one class per kind of bad input, all deriving from SimharpsError."""


class SimharpsError(Exception):
    """Base class of every error simharps raises on purpose."""


class HarpsFormatError(SimharpsError):
    """A file is not a readable HARPS/ESPRESSO archive product; the message names the file and the reason."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ParameterError(SimharpsError, ValueError):
    """A physical parameter is outside its supported range; the message names it and the valid range."""
