"""Linear baseline: principal component analysis (scikit-learn PCA, or IncrementalPCA out of core).

Fitted state is the mean (n_channels,), the components (latent_dim, n_channels) and their explained
variance, stored as float32 arrays in an .npz (no pickle); ``encode``/``decode`` are the plain projections
z = (x - mean) @ components.T and x = z @ components + mean, the same as scikit-learn's transform and
inverse_transform without whitening.

    pca = PCAModel(11000, latent_dim=8).fit(x)              # x: (n, 11000) array, in memory
    pca = PCAModel(16384, 128).fit(batches)                  # iterable of (m, 16384) arrays -> IncrementalPCA
    z = pca.encode(x); pca.save("pca.npz"); PCAModel.load("pca.npz")
"""

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA

_STATE = ("mean", "components", "explained_variance", "explained_variance_ratio")


class PCAModel:
    """PCA with ``latent_dim`` components on (n, n_channels) spectra.

    ``incremental``: fit with IncrementalPCA on chunks of ``batch_size`` rows (also used whenever ``fit`` is
    given an iterable of batches rather than an array; then each batch is cast to float32 on arrival, so
    float16 memory-mapped caches never load whole).
    """

    kind = "pca"

    def __init__(self, n_channels, latent_dim=8, incremental=False, batch_size=1024):
        self.n_channels = int(n_channels)
        self.latent_dim = int(latent_dim)
        if not 1 <= self.latent_dim <= self.n_channels:
            raise ValueError(f"pca: latent_dim must be in 1..{self.n_channels}, got {latent_dim}")
        if int(batch_size) < self.latent_dim:
            raise ValueError(f"pca: batch_size ({batch_size}) must be at least latent_dim ({self.latent_dim})")
        self.incremental = bool(incremental)
        self.batch_size = int(batch_size)
        self.mean = self.components = self.explained_variance = self.explained_variance_ratio = None
        self.n_samples = 0

    @property
    def config(self):
        """Keyword arguments that rebuild this model through ``build_model("pca", **config)``."""
        return {"n_channels": self.n_channels, "latent_dim": self.latent_dim, "incremental": self.incremental,
                "batch_size": self.batch_size}

    def _rows(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"pca: expected arrays of shape (n, {self.n_channels}), got {x.shape}")
        return x

    def fit(self, x):
        """Fit on an (n, n_channels) array or an iterable of (m, n_channels) batches; returns self."""
        if isinstance(x, np.ndarray) and not self.incremental:
            x = self._rows(x)
            if len(x) < self.latent_dim:
                raise ValueError(f"pca: {len(x)} spectra cannot give {self.latent_dim} components")
            estimator = PCA(n_components=self.latent_dim, random_state=0).fit(x)   # randomized SVD: seeded
            self.n_samples = len(x)
        else:
            chunks = (x[i:i + self.batch_size] for i in range(0, len(x), self.batch_size)) \
                if isinstance(x, np.ndarray) else x
            estimator = self._fit_incremental(chunks)
        self.mean = estimator.mean_.astype(np.float32)
        self.components = estimator.components_.astype(np.float32)
        self.explained_variance = estimator.explained_variance_.astype(np.float32)
        self.explained_variance_ratio = estimator.explained_variance_ratio_.astype(np.float32)
        return self

    def _fit_incremental(self, chunks):
        """IncrementalPCA over chunks; latent_dim rows are held back so the last partial_fit is never too small."""
        estimator = IncrementalPCA(n_components=self.latent_dim)
        pending = np.empty((0, self.n_channels), np.float32)
        self.n_samples = 0
        for chunk in chunks:
            pending = np.concatenate([pending, self._rows(chunk)])
            if len(pending) >= self.batch_size + self.latent_dim:
                estimator.partial_fit(pending[:-self.latent_dim])
                self.n_samples += len(pending) - self.latent_dim
                pending = pending[-self.latent_dim:]
        if self.n_samples + len(pending) < self.latent_dim:
            raise ValueError(f"pca: {self.n_samples + len(pending)} spectra cannot give {self.latent_dim} components")
        estimator.partial_fit(pending)
        self.n_samples += len(pending)
        return estimator

    def _fitted(self):
        if self.components is None:
            raise RuntimeError("pca: fit or load the model first")

    def encode(self, x):
        """Latents (n, latent_dim) float32 of spectra (n, n_channels)."""
        self._fitted()
        return (self._rows(x) - self.mean) @ self.components.T

    def decode(self, z):
        """Reconstructions (n, n_channels) float32 of latents (n, latent_dim)."""
        self._fitted()
        return np.asarray(z, dtype=np.float32) @ self.components + self.mean

    def save(self, path):
        """Write the fitted state and config to an .npz file."""
        self._fitted()
        np.savez(path, n_samples=self.n_samples, **self.config, **{k: getattr(self, k) for k in _STATE})

    @classmethod
    def load(cls, path):
        """Read a model written by ``save``."""
        with np.load(path, allow_pickle=False) as data:
            model = cls(int(data["n_channels"]), int(data["latent_dim"]), bool(data["incremental"]),
                        int(data["batch_size"]))
            for key in _STATE:
                setattr(model, key, data[key])
            model.n_samples = int(data["n_samples"])
        return model
