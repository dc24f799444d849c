"""Run-time template grid of built-in spectra, cached on disk, with multilinear interpolation.

Method
------
Synthesising a full-range spectrum costs about a second; a batch of thousands of stars instead
interpolates unbroadened rest-frame templates built once on a (Teff, logg, [M/H]) grid:

1. template(Teff_j, logg_k, [M/H]_l): continuum-normalised flux ``1 - A_c eta / (1 + eta)`` of
   ``simharps.stellar.synthesis`` at the grid's microturbulence, rest frame, no rotation or
   macroturbulence, on the synthesis lattice over ``TEMPLATE_RANGE_AA`` (float32), plus the ratio
   T_b / Teff of its backwarmed continuum temperature. Built on first use and cached under
   ``$SIMHARPS_CACHE/stellar_templates`` (default ``~/.cache/simharps``), in a folder keyed by a
   hash of everything a template depends on (``synthesis_hash``: the source text of ``SYNTHESIS_MODULES``
   and the bytes of ``SYNTHESIS_DATA``), the step and the microturbulence, so that any change of the
   synthesis code or line table starts a new cache instead of reading stale templates (about 5 MB each,
   one memory-mappable ``.npy`` record per node, so a node is read from the page cache in ~0.4 ms instead of
   ~4 ms for a compressed archive; nothing is shipped).
2. a star: multilinear interpolation of the 8 corner templates in normalised flux and in T_b / Teff
   (weights linear in Teff, logg, [M/H]), then rotation + macroturbulence (``simharps.broadening``),
   then the relativistic Doppler shift by linear interpolation in ln(lambda) onto the output lattice,
   then times the Planck continuum ``pi B_lambda(T_b)``.

Approximations: interpolation between nodes (250 K, 0.5 dex in logg and [M/H] by default) instead
of exact synthesis: line depths follow the interpolation, not the curve of growth, between nodes;
the microturbulence is fixed per grid; the Doppler shift of the broadened spectrum is a linear
interpolation on the 0.15 km/s lattice (sub-m/s RV effect, < 1e-3 in flux for lines broader than
the LSF).

Example
-------
>>> from simharps.stellar.templates import TemplateGrid
>>> grid = TemplateGrid()
>>> star = grid.spectrum(5713, 4.48, -0.37, vsini_kms=3.0, rv_kms=3.5)
"""

import hashlib
import importlib.util
import multiprocessing
import os
from collections import OrderedDict
from functools import lru_cache
from importlib import resources
from itertools import product
from pathlib import Path

import numpy as np
from tqdm import tqdm

from simharps.broadening import DEFAULT_LIMB_DARKENING, broaden, broadening_margin_kms
from simharps.constants import C_KMS
from simharps.errors import ParameterError
from simharps.grids import WORKING_STEP_KMS
from simharps.kinematics import doppler_factor
from simharps.stellar.continuum import planck_flux
from simharps.stellar.lines import line_parameters
from simharps.stellar.spectrum import StellarSpectrum
from simharps.stellar.synthesis import (
    ALLOWED_RANGE_AA,
    DEFAULT_VMIC_KMS,
    check_parameters,
    check_window,
    continuum_temperature,
    default_vmac_kms,
    lattice_indices,
    lattice_wavelengths,
    normalised_lines,
)
from simharps.workers import WorkerPool

MEMORY_NODES = 128
"""Template nodes kept open per process, least recently used dropped first (memory maps of the cached files: the
operating system's page cache holds the data)."""

SYNTHESIS_MODULES = ("simharps.constants", "simharps.grids", "simharps.stellar.balmer", "simharps.stellar.continuum",
                     "simharps.stellar.linelist", "simharps.stellar.lines", "simharps.stellar.synthesis",
                     "simharps.stellar.templates", "simharps.stellar.tio_bands")
"""Modules whose source text a cached template depends on: what ``TemplateGrid.build_template`` calls, and this
module (the cache record format)."""
SYNTHESIS_DATA = ("stellar_lines.npz", "stellar_forest.npz", "astrophysical_gf.npz")
"""Files of ``simharps/data`` that the synthesis reads."""
TEMPLATE_RANGE_AA = ALLOWED_RANGE_AA
TEFF_NODES_K = np.arange(3000.0, 7250.0 + 1.0, 250.0)
LOGG_NODES_CGS = np.arange(3.0, 5.5 + 0.01, 0.5)
MH_NODES_DEX = np.arange(-2.5, 1.0 + 0.01, 0.5)


def cache_root():
    """Template cache folder: ``$SIMHARPS_CACHE`` or ``~/.cache/simharps``, plus ``stellar_templates``."""
    base = os.environ.get("SIMHARPS_CACHE") or Path.home() / ".cache" / "simharps"
    return Path(base) / "stellar_templates"


def synthesis_inputs():
    """[(name, bytes)] of the template inputs: the source of ``SYNTHESIS_MODULES`` and ``SYNTHESIS_DATA``."""
    sources = [(name, Path(importlib.util.find_spec(name).origin).read_bytes()) for name in SYNTHESIS_MODULES]
    data = [(name, resources.files("simharps.data").joinpath(name).read_bytes()) for name in SYNTHESIS_DATA]
    return sources + data


def inputs_hash(inputs):
    """First 16 hex digits of the sha256 of [(name, bytes)] (names and lengths included)."""
    digest = hashlib.sha256()
    for name, data in inputs:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def synthesis_hash():
    """``inputs_hash(synthesis_inputs())``, computed once per process (reads ~0.6 MB, a few ms)."""
    return inputs_hash(synthesis_inputs())


def cache_key(step_kms, vmic_kms):
    """Name of the cache folder of a grid: synthesis hash, lattice step (km/s) and microturbulence (km/s)."""
    return f"synth-{synthesis_hash()}_step{step_kms:g}_vmic{vmic_kms:g}"


def _build_node(task):
    """Worker of ``TemplateGrid.build``: synthesise and cache one node."""
    settings, node = task
    TemplateGrid(**settings).template(*node)


def _bracket(nodes, value, name):
    if not nodes[0] <= value <= nodes[-1]:
        raise ParameterError(f"{name}={value} is outside the template grid [{nodes[0]}, {nodes[-1]}]")
    i = int(np.clip(np.searchsorted(nodes, value) - 1, 0, len(nodes) - 2))
    return i, (value - nodes[i]) / (nodes[i + 1] - nodes[i])


class TemplateGrid:
    """Lazily built, disk-cached grid of rest-frame normalised templates on the synthesis lattice."""

    def __init__(self, teff_nodes_k=TEFF_NODES_K, logg_nodes_cgs=LOGG_NODES_CGS, mh_nodes_dex=MH_NODES_DEX,
                 vmic_kms=DEFAULT_VMIC_KMS, step_kms=WORKING_STEP_KMS, cache_dir=None):
        self.teff_nodes_k = np.asarray(teff_nodes_k, dtype=float)
        self.logg_nodes_cgs = np.asarray(logg_nodes_cgs, dtype=float)
        self.mh_nodes_dex = np.asarray(mh_nodes_dex, dtype=float)
        self.vmic_kms = float(vmic_kms)
        self.step_kms = float(step_kms)
        self.first, self.last = lattice_indices(*TEMPLATE_RANGE_AA, step_kms=self.step_kms)
        self.wavelength_air_aa = lattice_wavelengths(self.first, self.last, self.step_kms)
        default_dir = cache_root() / cache_key(self.step_kms, self.vmic_kms)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_dir
        self._memory = OrderedDict()

    def _path(self, teff_k, logg_cgs, mh_dex):
        return self.cache_dir / f"t{teff_k:.0f}_g{logg_cgs:+.2f}_m{mh_dex:+.2f}.npy"

    def build_template(self, teff_k, logg_cgs, mh_dex):
        """Synthesise one node: (normalised float32 rest-frame flux on the template lattice, T_b / Teff)."""
        check_parameters(teff_k=teff_k, logg_cgs=logg_cgs, mh_dex=mh_dex, vmic_kms=self.vmic_kms)
        parameters = line_parameters(teff_k, logg_cgs, mh_dex, self.vmic_kms)
        normalised = normalised_lines(np.log(self.wavelength_air_aa), self.step_kms, teff_k, logg_cgs, parameters,
                                      mh_dex=mh_dex)
        ratio = continuum_temperature(teff_k, logg_cgs, parameters, mh_dex) / teff_k
        return normalised.astype(np.float32), float(ratio)

    def template(self, teff_k, logg_cgs, mh_dex):
        """One node, from memory, the disk cache, or built (and cached) now."""
        key = (float(teff_k), float(logg_cgs), float(mh_dex))
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self._path(*key)
        if path.exists():
            stored = np.load(path, mmap_mode="r")[0]
            entry = (stored["normalised"], float(stored["temperature_ratio"]))
        else:
            entry = self.build_template(*key)
            record = np.zeros(1, dtype=[("normalised", np.float32, entry[0].shape), ("temperature_ratio", float)])
            record["normalised"], record["temperature_ratio"] = entry
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                np.save(handle, record)
            os.replace(tmp, path)
        self._memory[key] = entry
        if len(self._memory) > MEMORY_NODES:
            self._memory.popitem(last=False)
        return entry

    def corners(self, teff_k, logg_cgs, mh_dex):
        """The nodes around (Teff, logg, [M/H]) with non-zero multilinear weight: [((teff, logg, mh), weight)]."""
        brackets = [
            _bracket(self.teff_nodes_k, teff_k, "teff_k"),
            _bracket(self.logg_nodes_cgs, logg_cgs, "logg_cgs"),
            _bracket(self.mh_nodes_dex, mh_dex, "mh_dex"),
        ]
        nodes = (self.teff_nodes_k, self.logg_nodes_cgs, self.mh_nodes_dex)
        found = []
        for corner in product((0, 1), repeat=3):
            weight = np.prod([w if c else 1.0 - w for c, (_, w) in zip(corner, brackets)])
            if weight != 0.0:
                found.append((tuple(float(axis[i + c]) for axis, c, (i, _) in zip(nodes, corner, brackets)), weight))
        return found

    def missing(self, stars):
        """Nodes that the stars [(teff_k, logg_cgs, mh_dex), ...] need and the disk cache does not hold yet."""
        needed = {node for star in stars for node, _ in self.corners(*star)}
        return sorted(node for node in needed if not self._path(*node).exists())

    def build(self, nodes, workers=1, progress=False):
        """Synthesise and cache ``nodes`` (from ``missing``), in ``workers`` spawned processes."""
        nodes = list(nodes)
        if workers > 1 and len(nodes) > 1:
            context = multiprocessing.get_context("spawn")
            with WorkerPool(workers, context) as pool:
                done = pool.map(_build_node, [(self._settings(), node) for node in nodes])
                for _ in tqdm(done, total=len(nodes), disable=not progress or not nodes, desc="stellar templates"):
                    pass
        else:
            for node in tqdm(nodes, disable=not progress or not nodes, desc="stellar templates"):
                self.template(*node)

    def _settings(self):
        return dict(teff_nodes_k=self.teff_nodes_k, logg_nodes_cgs=self.logg_nodes_cgs, mh_nodes_dex=self.mh_nodes_dex,
                    vmic_kms=self.vmic_kms, step_kms=self.step_kms, cache_dir=self.cache_dir)

    def interpolate(self, teff_k, logg_cgs, mh_dex, span=slice(None)):
        """Multilinear interpolation of the 8 surrounding nodes: (normalised float32 rest flux, T_b / Teff).

        ``span``: the slice of the template lattice wanted (default all of it); only that part is summed.
        """
        flux, scratch, ratio = None, None, 0.0
        for node, weight in self.corners(teff_k, logg_cgs, mh_dex):
            normalised, node_ratio = self.template(*node)
            if flux is None:
                flux = normalised[span] * np.float32(weight)
                scratch = np.empty_like(flux)
            else:
                flux += np.multiply(normalised[span], np.float32(weight), out=scratch)
            ratio += weight * node_ratio
        return flux, ratio

    def spectrum(self, teff_k, logg_cgs=4.44, mh_dex=0.0, vsini_kms=0.0, vmac_kms=None, rv_kms=0.0, window=None,
                 limb_darkening=DEFAULT_LIMB_DARKENING, macroturbulence="radial-tangential"):
        """A star from the grid: interpolate, broaden, Doppler-shift; returns a ``StellarSpectrum`` (barycentric)."""
        vmac_kms = default_vmac_kms(teff_k) if vmac_kms is None else vmac_kms
        check_parameters(teff_k=teff_k, logg_cgs=logg_cgs, mh_dex=mh_dex, vmac_kms=vmac_kms, vsini_kms=vsini_kms,
                         rv_kms=rv_kms)
        start, stop = check_window(window)
        doppler = doppler_factor(rv_kms)
        margin = int(np.ceil(broadening_margin_kms(vsini_kms, vmac_kms) / self.step_kms)) + 2
        first_out, last_out = lattice_indices(start, stop, self.step_kms)
        shift_px = np.log(doppler) * C_KMS / self.step_kms
        lo = max(int(np.floor(first_out - shift_px)) - margin - self.first, 0)
        hi = min(int(np.ceil(last_out - shift_px)) + margin - self.first + 1, len(self.wavelength_air_aa))
        if lo >= hi or first_out - shift_px < self.first or last_out - shift_px > self.last:
            raise ParameterError(
                f"window {start}-{stop} A at rv_kms={rv_kms} needs rest wavelengths outside the template range "
                f"{TEMPLATE_RANGE_AA[0]}-{TEMPLATE_RANGE_AA[1]} A"
            )
        normalised, ratio = self.interpolate(teff_k, logg_cgs, mh_dex, slice(lo, hi))
        broadened = broaden(normalised, self.step_kms, vsini_kms, vmac_kms, limb_darkening, macroturbulence)
        out_index = np.arange(first_out, last_out + 1)
        source = out_index - shift_px - self.first - lo
        shifted = np.interp(source, np.arange(hi - lo), broadened).astype(np.float32)
        wave = lattice_wavelengths(first_out, last_out, self.step_kms)
        temperature_b = ratio * teff_k
        continuum = planck_flux(wave / doppler, temperature_b)
        params = dict(teff_k=teff_k, logg_cgs=logg_cgs, mh_dex=mh_dex, vmic_kms=self.vmic_kms, vmac_kms=vmac_kms,
                      vsini_kms=vsini_kms, rv_kms=rv_kms, limb_darkening=limb_darkening,
                      macroturbulence=macroturbulence, continuum_temperature_k=temperature_b, model="builtin-template")
        return StellarSpectrum(wave, shifted * continuum.astype(np.float32), continuum.astype(np.float32),
                               self.step_kms, params, "barycentric")
