"""Common interface of the torch autoencoders: (batch, n_channels) float32 in, ``ModelOutput`` out.

A subclass provides ``heads(x) -> (mean, logvar or None)`` on a checked (batch, n_channels) input and
``decode(z) -> (batch, n_channels)``. Weights depend only on the caller's ``torch.manual_seed``; the model
holds no random state of its own.
"""

from typing import NamedTuple, Optional

import torch
from torch import nn


class ModelOutput(NamedTuple):
    """``reconstruction`` (batch, n_channels); ``mean``, ``logvar`` (batch, latent); ``logvar`` None if not a VAE."""

    reconstruction: torch.Tensor
    mean: torch.Tensor
    logvar: Optional[torch.Tensor]


class Autoencoder(nn.Module):
    """Encoder features -> mean (and log-variance) heads -> latent -> decoder.

    Variational models sample ``z = mean + eps * exp(logvar / 2)`` in training mode only; in eval mode,
    and in ``encode``, the latent is the mean (the latents used for analysis).
    """

    kind = ""
    latent_range = (1, 8192)

    def __init__(self, n_channels, latent_dim, variational):
        super().__init__()
        low, high = self.latent_range
        if not low <= int(latent_dim) <= high:
            raise ValueError(f"{self.kind}: latent_dim must be in {low}..{high}, got {latent_dim}")
        self.n_channels = int(n_channels)
        self.latent_dim = int(latent_dim)
        self.variational = bool(variational)

    @property
    def config(self):
        """Keyword arguments that rebuild this model through ``build_model(kind, **config)``."""
        return {"n_channels": self.n_channels, "latent_dim": self.latent_dim, "variational": self.variational}

    def _check(self, x):
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"{self.kind}: expected input of shape (batch, {self.n_channels}), got {tuple(x.shape)}")

    def heads(self, x):
        """(mean, logvar), each (batch, latent_dim); logvar None for a deterministic model."""
        raise NotImplementedError

    def decode(self, z):
        """Reconstruction (batch, n_channels) of latents z (batch, latent_dim)."""
        raise NotImplementedError

    def encode(self, x):
        """Latent mean, (batch, latent_dim)."""
        self._check(x)
        return self.heads(x)[0]

    def forward(self, x):
        self._check(x)
        mean, logvar = self.heads(x)
        z = mean
        if self.variational and self.training:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        return ModelOutput(self.decode(z), mean, logvar)
