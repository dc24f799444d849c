"""Encode a dataset with a trained model: latents of every spectrum and reconstructions of a subset.

``encode_dataset(model_dir, dataset, name, cache_root)`` applies the model's own preprocessing (its config.json)
to ``dataset`` (the training set or any other, e.g. the real alpha Cen B series for a model trained on
simulations) without whitening, and writes into the model directory:

- ``latents-NAME.npy``: (n_spectra, n_latent) float32, row i = spectrum_index i, for every spectrum (also those
  the quality filters excluded; ``split.npy`` / the cache's reasons say which). VAEs: the mean.
- ``reconstructions-NAME.npz``: for ``n_reconstructions`` spectra (on the training set: evenly spaced test-split
  spectra, topped up with evenly spaced others when the test split is smaller; else evenly spaced usable spectra): ``spectrum_index``, ``wavelength_aa``, ``input``, ``output``,
  ``mask``, ``sigma`` (noise in input units), ``telluric`` (T, moved like the flux), ``amplitude`` and ``offset``
  (input = raw flux / amplitude - offset on valid channels) and, when the dataset has the
  components, ``stellar`` (S, normalised) and ``expected_telluric_free`` (C = response x stellar after the same
  frame, channel and amplitude steps; no DC step): what the telluric-versus-stellar metric needs.
"""

from pathlib import Path

import numpy as np
import torch

from analysis import preprocess
from analysis.cache import build_cache
from analysis.config import PreprocessingConfig
from analysis.train import load_trained


def _latents(model, x):
    """Latents (VAE: the mean) of the network inputs ``x`` (n, L)."""
    if hasattr(model, "state_dict"):
        with torch.no_grad():
            return model.encode(torch.from_numpy(x)).numpy().astype(np.float32)
    return np.asarray(model.encode(x), dtype=np.float32)


def _reconstruct(model, x, batch=64):
    """decode(encode(x)) in batches: the model's reconstruction of the inputs ``x`` (n, L)."""
    outputs = []
    for start in range(0, x.shape[0], batch):
        z = _latents(model, x[start:start + batch])
        if hasattr(model, "state_dict"):
            with torch.no_grad():
                outputs.append(model.decode(torch.from_numpy(z)).numpy().astype(np.float32))
        else:
            outputs.append(np.asarray(model.decode(z), dtype=np.float32))
    return np.concatenate(outputs) if outputs else np.zeros((0, x.shape[1]), np.float32)


def _subset(labels, usable, n):
    if labels is not None:
        preferred = np.flatnonzero(labels == "test")
        rest = np.flatnonzero((labels != "test") & (labels != "excluded"))
        candidates = np.concatenate((preferred, rest))
    else:
        candidates = np.flatnonzero(usable)
    if candidates.size <= n:
        return np.sort(candidates)
    if labels is not None and preferred.size >= n:
        candidates = preferred                      # held-out spectra only, spread over every held-out group
    elif labels is not None:
        spread = rest[np.linspace(0, rest.size - 1, n - preferred.size).round().astype(int)]
        return np.sort(np.concatenate((preferred, spread)))
    return np.sort(candidates[np.linspace(0, candidates.size - 1, n).round().astype(int)])


def component_through_preprocessing(dataset, indices, config, values_name, prepared=None):
    """A noise-free dataset component (or ``"expected"`` = response x stellar) moved by the static steps (frame,
    channels) exactly like the flux; when ``prepared`` is given, also divided by its amplitude (no DC step: the
    telluric metric fits data = a C T + b itself)."""
    lay = preprocess.layout(dataset.wavelength_air_aa, config)
    read = lambda name: np.asarray(dataset[name][indices, lay.read_start:lay.read_stop], dtype=np.float64)  # noqa
    values = read("response") * read("stellar") if values_name == "expected" else read(values_name)
    static = preprocess.static_batch(dataset.wavelength_air_aa, {"flux": values, "error": np.ones_like(values)},
                                     dataset.table[indices], config, lay)
    raw = static.flux.astype(np.float64) * static.scale[:, None]
    if prepared is None:
        return raw.astype(np.float32)
    return (raw / prepared.amplitude[:, None]).astype(np.float32)


RECONSTRUCTION_VALUES = 2**24
"""At most this many channel values per array in a reconstructions file (4,096 spectra of 4,096 channels, 51 of
327,680): the file stays below ~0.5 GB whatever ``n_reconstructions`` asks."""


def encode_dataset(model_dir, dataset, name, cache_root, *, n_reconstructions=64, progress=False):
    """Write latents-NAME.npy and reconstructions-NAME.npz into ``model_dir``; returns (latents path, npz path)."""
    model_dir = Path(model_dir)
    model, config = load_trained(model_dir)
    preprocessing = PreprocessingConfig.model_validate(config["preprocessing"])
    cache = build_cache(dataset, preprocessing, cache_root, progress=progress)
    if cache.n_channels != config["n_channels"]:
        raise ValueError(f"{dataset.path}: the model's preprocessing gives {cache.n_channels} channels here, the "
                         f"model was trained on {config['n_channels']}")
    latents = np.concatenate([_latents(model, cache.prepared(np.arange(start, min(start + 64, len(dataset)))).x)
                              for start in range(0, len(dataset), 64)])
    latents_path = model_dir / f"latents-{name}.npy"
    np.save(latents_path, latents)
    same = config["dataset"]["fingerprint"] == dataset.manifest["fingerprint"]
    labels = np.load(model_dir / "split.npy") if same and (model_dir / "split.npy").exists() else None
    n_reconstructions = min(n_reconstructions, max(RECONSTRUCTION_VALUES // cache.n_channels, 4))
    subset = _subset(labels, cache.usable, n_reconstructions)
    prepared = cache.prepared(subset)
    output = _reconstruct(model, prepared.x)
    record = {"spectrum_index": subset, "wavelength_aa": cache.wavelength_aa, "input": prepared.x, "output": output,
              "mask": prepared.mask, "sigma": prepared.sigma, "telluric": prepared.telluric,
              "amplitude": prepared.amplitude, "offset": prepared.offset}
    if subset.size and {"stellar", "response"} <= set(dataset.array_names):
        record["stellar"] = component_through_preprocessing(dataset, subset, preprocessing, "stellar")
        record["expected_telluric_free"] = component_through_preprocessing(dataset, subset, preprocessing,
                                                                           "expected", prepared)
    npz_path = model_dir / f"reconstructions-{name}.npz"
    np.savez_compressed(npz_path, **record)
    return latents_path, npz_path
