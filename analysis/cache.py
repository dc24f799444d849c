"""Preprocessed inputs written once to memory-mapped ``.npy`` files, keyed by the preprocessing hash.

Reading shuffled single spectra from the dataset's zip chunks is slow (a chunk decodes whole), so training reads
from this cache instead: the static part of ``analysis.preprocess`` runs once, sequentially over the dataset, and
its arrays go to ``ROOT/KEY/`` (KEY = sha256 of the dataset fingerprint, the static options and ``CACHE_VERSION``)::

    flux.npy, sigma.npy   (n, L) float16: flux / s and sigma / s, s = the spectrum's static median (scale.npy)
    mask.npy              (n, L) bool
    telluric.npy          (n, L) float16, 1 where the dataset has no telluric component
    scale.npy             (n,) float64
    meta.json             options, wavelength file, filtered spectra with reasons, quality numbers, build timing

float16 rounds values near 1 by <= 2^-11 (rms ~1.4e-4): 0.07 sigma at S/N 500 per channel (alpha Cen B's
best), 0.5 % of the noise variance; the dataset itself stores float16. The directory is written under a temporary
name and renamed when complete, so a killed build leaves no half cache.

Example
-------
>>> cache = build_cache(open_dataset("runs/ci"), PreprocessingConfig(), "runs/ci-run/cache")   # doctest: +SKIP
>>> batch = cache.prepared([0, 5, 9], epoch=3, seed=0)        # analysis.preprocess.Prepared
"""

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from analysis import preprocess

CACHE_VERSION = 1


def cache_key(dataset, config):
    payload = json.dumps({"dataset": dataset.manifest["fingerprint"], "options": preprocess.static_options(config),
                          "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class Cache:
    """A built cache (memory-mapped, read-only) with the preprocessing options that made it."""

    def __init__(self, path, config):
        self.path = Path(path)
        self.config = config
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.flux = np.load(self.path / "flux.npy", mmap_mode="r")
        self.sigma = np.load(self.path / "sigma.npy", mmap_mode="r")
        self.mask = np.load(self.path / "mask.npy", mmap_mode="r")
        self.telluric = np.load(self.path / "telluric.npy", mmap_mode="r")
        self.scale = np.load(self.path / "scale.npy")
        self.wavelength_aa = np.load(self.path / "wavelength_aa.npy")
        self.reasons = self.meta["reasons"]

    def __len__(self):
        return self.flux.shape[0]

    @property
    def n_channels(self):
        return self.flux.shape[1]

    @property
    def usable(self):
        """Boolean (n,): spectra that passed the quality filters."""
        return np.array([reason == "" for reason in self.reasons], dtype=bool)

    def prepared(self, indices, *, epoch=None, seed=0):
        """``Prepared`` batch of spectra ``indices``; velocity whitening (when configured) only when ``epoch`` is
        given (training), never when encoding."""
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices)
        sorted_indices = indices[order]
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        take = lambda array: np.asarray(array[sorted_indices])[back]  # noqa: E731 (memmap reads in index order)
        shifts = None
        if self.config.whitening is not None and epoch is not None:
            shifts = preprocess.whitening_shifts_kms(indices, epoch, seed, self.config.whitening.max_kms)
        return preprocess.finish_batch(self.wavelength_aa, take(self.flux), take(self.sigma), take(self.mask),
                                       take(self.telluric), self.scale[indices], self.config, shifts_kms=shifts)


def build_cache(dataset, config, root, *, progress=False, batch_size=None):
    """The cache of ``dataset`` under ``config`` (a ``PreprocessingConfig``) in ``root``; built when absent."""
    root = Path(root)
    key = cache_key(dataset, config)
    final = root / key
    if (final / "meta.json").exists():
        return Cache(final, config)
    started = time.perf_counter()
    lay = preprocess.layout(dataset.wavelength_air_aa, config)
    tmp = root / f".{key}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n, length = len(dataset), lay.n_out
    files = {name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(n, length))
             for name, dtype in (("flux", np.float16), ("sigma", np.float16), ("mask", np.bool_),
                                 ("telluric", np.float16))}
    scale = np.ones(n)
    reasons, quality = [], {name: [] for name in preprocess.QUALITY_FIELDS}
    has_telluric = "telluric" in dataset.array_names
    names = ("flux", "error") + (("telluric",) if has_telluric else ())
    batch_size = batch_size or dataset.chunk_size
    bar = _progress(n, progress)
    table = dataset.table
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        arrays = {name: dataset[name][start:stop, lay.read_start:lay.read_stop] for name in names}
        static = preprocess.static_batch(dataset.wavelength_air_aa, arrays, table[start:stop], config, lay)
        for name in ("flux", "sigma", "telluric"):
            files[name][start:stop] = getattr(static, name).astype(np.float16)
        files["mask"][start:stop] = static.mask
        scale[start:stop] = static.scale
        reasons.extend(static.reasons)
        for name in quality:
            quality[name].extend(_json_float(v) for v in static.quality[name])
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    for array in files.values():
        array.flush()
    del files
    np.save(tmp / "scale.npy", scale)
    np.save(tmp / "wavelength_aa.npy", lay.wavelength_aa)
    seconds = time.perf_counter() - started
    meta = {"key": key, "version": CACHE_VERSION, "dataset": {"path": str(dataset.path),
                                                               "fingerprint": dataset.manifest["fingerprint"]},
            "options": preprocess.static_options(config), "n_spectra": n, "n_channels": length,
            "has_telluric": has_telluric, "reasons": reasons, "quality": quality,
            "filtered": [{"index": i, "reason": r} for i, r in enumerate(reasons) if r],
            "build_seconds": seconds, "spectra_per_second": n / seconds if seconds > 0 else None}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return Cache(final, config)


def _json_float(value):
    value = float(value)
    return value if np.isfinite(value) else None


def _progress(total, enabled):
    import sys

    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="preprocess", unit="spectra", leave=False)
