"""Which channels a dataset stores: the full 0.01 A grid, a window, or fewer channels by binning or decimation.

A ``Channels`` selection is applied by the generation runner to every batch right after ``simulate_batch``
(before encoding), so the forward model always works on its own grid and the stored product is whatever the
scenario asks for. The same object can be applied by a caller to any arrays.

Order of operations: (1) window ``[start_aa, stop_aa]`` (inclusive, on the wavelengths the simulator returns);
(2) reduction by an integer ``factor``, or to ``n_channels`` channels with ``factor = n_in // n_channels`` and
the ``n_in - n_channels * factor`` left-over input channels dropped half at each end (so the window stays
centred); with an explicit ``factor`` the left-over channels (< factor) are dropped at the red end.

Methods:

* ``bin`` (default; what the HITS-style 11,000-channel inputs should use): each output channel is the mean of
  ``factor`` adjacent inputs, its wavelength the mean of theirs, its error ``sqrt(sum e_i^2) / factor``
  (independent noise). A NaN input (CCD gap, failed spectrum) makes its whole output channel NaN.
* ``decimate``: keeps the central input channel of each block of ``factor`` (``index factor // 2``) with its own
  wavelength and error; no averaging, so the noise per channel is unchanged and the wavelengths stay on the
  0.01 A lattice.

Example
-------
>>> import numpy as np
>>> from simharps.dataset.channels import Channels
>>> wave = 5000.0 + 0.01 * np.arange(1000)
>>> sel = Channels(start_aa=5001.0, stop_aa=5008.99, factor=4)
>>> w, arrays = sel.apply(wave, {"flux": np.ones((2, 1000), np.float32), "error": np.ones((2, 1000), np.float32)})
>>> w.size, float(arrays["error"][0, 0])
(200, 0.5)
"""

from dataclasses import asdict, dataclass

import numpy as np

from simharps.errors import ParameterError

METHODS = ("bin", "decimate")

_WINDOW_TOLERANCE_AA = 1e-6


@dataclass(frozen=True)
class Channels:
    """A channel selection: optional window (A, air, inclusive), then binning or decimation by an integer factor.

    ``factor`` and ``n_channels`` are alternatives: give at most one. ``Channels()`` keeps every channel.
    """

    start_aa: float | None = None
    stop_aa: float | None = None
    factor: int | None = None
    n_channels: int | None = None
    method: str = "bin"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ParameterError(f"channels.method must be one of {METHODS}, got {self.method!r}")
        if self.factor is not None and self.n_channels is not None:
            raise ParameterError("channels: give either factor or n_channels, not both")
        if self.factor is not None and (int(self.factor) != self.factor or self.factor < 1):
            raise ParameterError(f"channels.factor must be an integer >= 1, got {self.factor!r}")
        if self.n_channels is not None and (int(self.n_channels) != self.n_channels or self.n_channels < 1):
            raise ParameterError(f"channels.n_channels must be an integer >= 1, got {self.n_channels!r}")
        if self.start_aa is not None and self.stop_aa is not None and not self.start_aa < self.stop_aa:
            raise ParameterError(f"channels: need start_aa < stop_aa, got {self.start_aa}, {self.stop_aa}")

    @classmethod
    def from_dict(cls, spec):
        """Build from a mapping (e.g. a scenario's ``channels:`` block) with the field names; None -> all channels."""
        if spec is None:
            return cls()
        if isinstance(spec, Channels):
            return spec
        unknown = set(spec) - {"start_aa", "stop_aa", "factor", "n_channels", "method"}
        if unknown:
            raise ParameterError(f"channels: unknown key(s) {sorted(unknown)}; valid: start_aa, stop_aa, factor, "
                                 "n_channels, method")
        return cls(**dict(spec))

    def to_dict(self):
        """Plain mapping (JSON-ready) that ``from_dict`` turns back into the same selection."""
        return asdict(self)

    @property
    def is_identity(self):
        """True when every input channel is kept unchanged."""
        return (self.start_aa is None and self.stop_aa is None and self.n_channels is None
                and (self.factor is None or self.factor == 1))

    def indices(self, wavelength_air_aa):
        """(first, factor, n_out): input channels ``first + factor * j + [0, factor)`` make output channel j."""
        wave = np.asarray(wavelength_air_aa, dtype=float)
        keep = np.ones(wave.size, dtype=bool)
        if self.start_aa is not None:
            keep &= wave >= self.start_aa - _WINDOW_TOLERANCE_AA
        if self.stop_aa is not None:
            keep &= wave <= self.stop_aa + _WINDOW_TOLERANCE_AA
        inside = np.flatnonzero(keep)
        if inside.size == 0:
            raise ParameterError(f"channels window [{self.start_aa}, {self.stop_aa}] A holds no channel of the "
                                 f"simulated grid {wave[0]:.2f}-{wave[-1]:.2f} A")
        first, n_in = int(inside[0]), int(inside.size)
        if self.n_channels is not None:
            if self.n_channels > n_in:
                raise ParameterError(f"channels.n_channels must be <= {n_in} (channels in the window), "
                                     f"got {self.n_channels}")
            factor = n_in // self.n_channels
            n_out = self.n_channels
            first += (n_in - n_out * factor) // 2
        else:
            factor = self.factor or 1
            if factor > n_in:
                raise ParameterError(f"channels.factor must be <= {n_in} (channels in the window), got {factor}")
            n_out = n_in // factor
        return first, factor, n_out

    def apply(self, wavelength_air_aa, arrays, error_name="error"):
        """Select channels of ``wavelength_air_aa`` and of every (n, n_in) array; returns (wavelength, arrays).

        The array named ``error_name`` is combined in quadrature when binning; all others are averaged.
        Arrays keep their dtype.
        """
        wave = np.asarray(wavelength_air_aa, dtype=np.float64)
        if self.is_identity:
            return wave, dict(arrays)
        first, factor, n_out = self.indices(wave)
        stop = first + factor * n_out
        if factor == 1:
            return wave[first:stop], {name: a[:, first:stop] for name, a in arrays.items()}
        if self.method == "decimate":
            pick = slice(first + factor // 2, stop, factor)
            return wave[pick], {name: a[:, pick] for name, a in arrays.items()}
        out_wave = wave[first:stop].reshape(n_out, factor).mean(axis=1)
        out = {}
        for name, a in arrays.items():
            blocks = np.asarray(a)[:, first:stop].reshape(a.shape[0], n_out, factor).astype(np.float64)
            if name == error_name:
                out[name] = (np.sqrt(np.sum(blocks**2, axis=2)) / factor).astype(a.dtype)
            else:
                out[name] = blocks.mean(axis=2).astype(a.dtype)
        return out_wave, out
