"""Convolutional (variational) autoencoder ``ae1d`` of Sedaghat et al. 2021 (MNRAS 501, 6026), as released in
NimSed/astro-machines ``models/models.py`` and trained by NimSed/stellar-karaoke ``train/train.py``.

Encoder: 15 blocks Conv1d(k, padding (k-1)//2) + LeakyReLU(0.1), channels 1 -> 16,16,16,32,32,32,64,64,64,128,
128,128,256,512,512, kernels 7,5,5 then twelve 3s, stride 2 for blocks 1-14 and 1 for block 15; flattened
512 x L/2^14 (512 x 20 = 10,240 at L = 327,680) into Linear heads for the mean and (variational) the
log-variance. Decoder: Linear(latent -> 512 x L/2^14), ConvTranspose1d(512, 512, k3, s1, p1), then 14
ConvTranspose1d(k4, s2, p1) mirroring the encoder's channels 512 -> 256 -> 128 -> ... -> 16 -> 1, each followed
by LeakyReLU(0.1), then Conv1d(1, 1, k3, p1) without activation. 7,046,997 parameters at L = 327,680 and
latent 128 (as the release); 3,301,717 at L = 16,384 (a 512 x 1 bottleneck).

Module names (conv1..conv15, fc11, fc12, fc2, deconv15..deconv1, predict0) follow the release, so its
checkpoint (``state_dict``) loads with ``load_state_dict`` into ``AE1D(327680, 128)``. Differences from the
release: the release's ``forward`` decodes the mean and drops the log-variance (an inference build); here
``forward`` returns (reconstruction, mean, logvar) and samples in training mode, as the training script
expects. Input is (batch, L) rather than (batch, 1, L); the channel axis is added here. The release has a
fixed length and latent; here both are options (latent 4..8192) and the depth follows the length. The
convolutions are He-initialised by default (``init="kaiming"``, see ``INITS`` for why); ``init="torch"`` keeps
PyTorch's default initialisation as the release does (it imports kaiming_normal_ but never calls it), and then,
with the same ``torch.manual_seed``, the construction order gives the very weights the released class draws.

Shorter inputs (rule): ``depth`` = number of stride-2 layers, by default min(14, floor(log2 L)), so the
bottleneck is 512 x L/2^depth with L/2^depth >= 1 (4,096 px -> depth 12, 512 x 1). L must be a multiple of
2^depth, else ValueError. The channel plan and all 15 blocks are kept: encoder blocks depth+1..14 (the
deepest, shortest ones) get stride 1, and their mirrors in the decoder become ConvTranspose1d(k3, s1, p1) like
the released deconv15. The pixel-scale front of the network is thus identical at every length; only the
coarsest scales the input cannot hold are gone.

    model = AE1D(16384, latent_dim=128)        # depth 14, bottleneck 512 x 1
    out = model(x)                             # x: (batch, 16384) float32
"""

import math

from torch import nn

from .base import Autoencoder

# (in_channels, out_channels, kernel) of encoder blocks 1..15 as released.
ENCODER_PLAN = ((1, 16, 7), (16, 16, 5), (16, 16, 5), (16, 32, 3), (32, 32, 3), (32, 32, 3), (32, 64, 3),
                (64, 64, 3), (64, 64, 3), (64, 128, 3), (128, 128, 3), (128, 128, 3), (128, 256, 3),
                (256, 512, 3), (512, 512, 3))
MAX_DEPTH = 14
SLOPE = 0.1


def ae1d_depth(n_channels, depth=None):
    """Number of stride-2 layers for an input of n_channels pixels; ValueError when it does not fit."""
    n_channels = int(n_channels)
    if n_channels < 2:
        raise ValueError(f"ae1d: input length must be at least 2 pixels, got {n_channels}")
    if depth is None:
        depth = min(MAX_DEPTH, int(math.log2(n_channels)))
    elif not 1 <= int(depth) <= MAX_DEPTH:
        raise ValueError(f"ae1d: depth must be in 1..{MAX_DEPTH}, got {depth}")
    depth = int(depth)
    if n_channels % 2**depth:
        twos = (n_channels & -n_channels).bit_length() - 1
        raise ValueError(
            f"ae1d: input length {n_channels} is not a multiple of 2^{depth} = {2**depth} (depth = number of "
            f"stride-2 layers; {n_channels} = 2^{twos} x {n_channels >> twos}); use a window that is a multiple "
            f"of {2**depth} (e.g. {2**depth * max(1, round(n_channels / 2**depth)):,} px) or pass depth <= {twos}")
    return depth


INITS = ("kaiming", "torch")
"""Weight initialisation: ``kaiming`` (He normal for LeakyReLU(0.1) and zero biases in the convolutions, the
linear heads as torch initialises them; the default here) or ``torch``
(PyTorch's default, as the release runs: it imports kaiming_normal_ but never calls it). Measured on 32 simulated
4,096-channel spectra at initialisation: with ``torch`` the latents vary across spectra by 7e-9 (the signal shrinks
by ~1/3 in variance per layer over 15 layers) and a few thousand iterations leave them nearly constant (std ~1e-7
after training), while ``kaiming`` keeps a 0.015 spread. The release trained 1.5 M iterations; simharps runs
thousands."""


def _conv(n_in, n_out, kernel, stride):
    return nn.Sequential(nn.Conv1d(n_in, n_out, kernel, stride=stride, padding=(kernel - 1) // 2),
                         nn.LeakyReLU(SLOPE, inplace=True))


def _deconv(n_in, n_out, stride):
    kernel = 4 if stride == 2 else 3
    return nn.Sequential(nn.ConvTranspose1d(n_in, n_out, kernel, stride=stride, padding=1),
                         nn.LeakyReLU(SLOPE, inplace=True))


class AE1D(Autoencoder):
    """Sedaghat et al. 2021 ``ae1d`` for inputs (batch, n_channels); ``variational=False`` drops the fc12 head."""

    kind = "ae1d"
    latent_range = (4, 8192)

    def __init__(self, n_channels, latent_dim=128, variational=True, depth=None, init="kaiming"):
        super().__init__(n_channels, latent_dim, variational)
        if init not in INITS:
            raise ValueError(f"ae1d: init must be one of {INITS}, got {init!r}")
        self.init = init
        self.depth = ae1d_depth(self.n_channels, depth)
        self.bottleneck = (ENCODER_PLAN[-1][1], self.n_channels // 2**self.depth)
        n_flat = self.bottleneck[0] * self.bottleneck[1]
        for i, (n_in, n_out, kernel) in enumerate(ENCODER_PLAN, start=1):
            self.add_module(f"conv{i}", _conv(n_in, n_out, kernel, 2 if i <= self.depth else 1))
        self.fc11 = nn.Linear(n_flat, self.latent_dim)
        self.fc12 = nn.Linear(n_flat, self.latent_dim) if self.variational else None
        self.fc2 = nn.Linear(self.latent_dim, n_flat)
        for i, (n_in, n_out, _) in reversed(list(enumerate(ENCODER_PLAN, start=1))):
            self.add_module(f"deconv{i}", _deconv(n_out, n_in, 2 if i <= self.depth else 1))
        self.predict0 = nn.Conv1d(1, 1, 3, padding=1)
        n_blocks = len(ENCODER_PLAN)
        self._encoder_order = tuple(f"conv{i}" for i in range(1, n_blocks + 1))
        self._decoder_order = tuple(f"deconv{i}" for i in range(n_blocks, 0, -1)) + ("predict0",)
        if init == "kaiming":
            for module in self.modules():
                if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                    nn.init.kaiming_normal_(module.weight, a=SLOPE, nonlinearity="leaky_relu")
                    nn.init.zeros_(module.bias)

    @property
    def config(self):
        return {**super().config, "depth": self.depth, "init": self.init}

    def heads(self, x):
        h = x[:, None, :]
        for name in self._encoder_order:
            h = getattr(self, name)(h)
        h = h.flatten(1)
        return self.fc11(h), (self.fc12(h) if self.variational else None)

    def decode(self, z):
        h = self.fc2(z).view(z.shape[0], *self.bottleneck)
        for name in self._decoder_order:
            h = getattr(self, name)(h)
        return h[:, 0, :]
