"""Fully connected autoencoder of the HITS set-up (the motivating study's small model).

n_channels -> 512 -> 128 -> 32 -> latent (default 2) -> 32 -> 128 -> 512 -> n_channels, LeakyReLU (torch's
default slope, 0.01) after every hidden layer, linear output. ``variational=True`` adds a log-variance head
beside the mean head on the last hidden layer. Input: (batch, n_channels) float32, e.g. the ``hits`` recipe's
11,000 binned channels.

    model = FCAE(11000, latent_dim=2)
    out = model(x)            # ModelOutput(reconstruction, mean, logvar=None)
"""

from torch import nn

from .base import Autoencoder


def _stack(sizes):
    """Linear layers between consecutive sizes, each followed by LeakyReLU."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.LeakyReLU()]
    return nn.Sequential(*layers)


class FCAE(Autoencoder):
    """HITS fully connected (variational) autoencoder; ``hidden`` are the encoder's layer widths."""

    kind = "fc_ae"

    def __init__(self, n_channels, latent_dim=2, hidden=(512, 128, 32), variational=False):
        super().__init__(n_channels, latent_dim, variational)
        self.hidden = tuple(int(h) for h in hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"fc_ae: hidden must be a non-empty list of positive widths, got {hidden}")
        self.encoder = _stack((self.n_channels, *self.hidden))
        self.fc_mean = nn.Linear(self.hidden[-1], self.latent_dim)
        self.fc_logvar = nn.Linear(self.hidden[-1], self.latent_dim) if self.variational else None
        self.decoder = nn.Sequential(*_stack((self.latent_dim, *self.hidden[::-1])),
                                     nn.Linear(self.hidden[0], self.n_channels))

    @property
    def config(self):
        return {**super().config, "hidden": list(self.hidden)}

    def heads(self, x):
        h = self.encoder(x)
        return self.fc_mean(h), (self.fc_logvar(h) if self.variational else None)

    def decode(self, z):
        return self.decoder(z)
