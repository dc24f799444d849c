"""Loss terms of the training loop (NimSed/stellar-karaoke ``train/train.py`` conventions).

* ``masked_mse``: sum of (weighted) squared residuals over unmasked pixels and the number of unmasked pixels,
  returned apart so a data-parallel caller can all-reduce both and divide: the loss per unmasked pixel.
* ``kl_divergence``: KL(N(mean, exp(logvar)) || N(0, 1)) averaged over batch and latents,
  -0.5 * mean(1 + logvar - mean^2 - exp(logvar)), as the study does (a weak-beta VAE).
* ``kl_weight``: the study's KL warm-up, 0 until iteration 5,000, then linear to 0.3 at 20,000, then 0.3.
"""

import torch


def masked_mse(recon, target, mask=None, weight=None):
    """(sum over unmasked pixels of weight * (recon - target)^2, number of unmasked pixels), both 0-d tensors.

    recon, target: (batch, n_channels); mask: same shape, True/nonzero = use the pixel (None: all);
    weight: optional per-pixel weights (e.g. inverse variance), same shape. Masked pixels contribute nothing,
    not even NaN or inf values of target or weight, and pass no gradient. Computed in float32 whatever the
    input precision (mixed-precision outputs would overflow a float16 sum).
    """
    mask = torch.ones_like(recon, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    zero = torch.zeros((), dtype=torch.float32, device=recon.device)
    squares = torch.where(mask, recon.float() - target.float(), zero).square()
    if weight is not None:
        squares = squares * torch.where(mask, weight.float(), zero)
    return squares.sum(), mask.sum()


def kl_divergence(mean, logvar):
    """KL divergence to the unit Gaussian, averaged over batch and latent dimensions (0-d float32 tensor)."""
    mean, logvar = mean.float(), logvar.float()
    return -0.5 * torch.mean(1 + logvar - mean.square() - logvar.exp())


def kl_weight(iteration, start=5000, stop=20000, max_weight=0.3):
    """Weight of the KL term at a training iteration: 0 before ``start``, linear to ``max_weight`` at ``stop``."""
    if iteration <= start:
        return 0.0
    if iteration >= stop:
        return float(max_weight)
    return float(max_weight) * (iteration - start) / (stop - start)
