"""Models of the analysis: ``pca`` (linear baseline), ``fc_ae`` (HITS fully connected AE/VAE) and ``ae1d``
(Sedaghat et al. 2021 convolutional VAE/AE), with the loss terms of the training loop.

Torch models take (batch, n_channels) float32 and return ``ModelOutput(reconstruction, mean, logvar)``;
``encode`` gives the latent mean used for analysis. ``build_model(kind, n_channels, **options)`` builds any
of them from a scenario's model entry; ``model.config`` gives back the options that rebuild it.
"""

import inspect

from .ae1d import AE1D, ae1d_depth
from .base import Autoencoder, ModelOutput
from .fcae import FCAE
from .losses import kl_divergence, kl_weight, masked_mse
from .pca import PCAModel

KINDS = {"pca": PCAModel, "fc_ae": FCAE, "ae1d": AE1D}

__all__ = ["AE1D", "Autoencoder", "FCAE", "KINDS", "ModelOutput", "PCAModel", "ae1d_depth", "build_model",
           "count_parameters", "kl_divergence", "kl_weight", "masked_mse"]


def build_model(kind, n_channels, **options):
    """A new model of ``kind`` ("pca", "fc_ae" or "ae1d") for inputs of n_channels; options go to its class."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    allowed = set(inspect.signature(KINDS[kind]).parameters) - {"n_channels"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"{kind}: unknown options {unknown}; allowed: {sorted(allowed)}")
    return KINDS[kind](n_channels, **options)


def count_parameters(model):
    """Trainable parameters of a torch model; for ``pca``, the fitted values (components and mean)."""
    if isinstance(model, PCAModel):
        return model.latent_dim * model.n_channels + model.n_channels
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
