"""Classifier two-sample test with a small 1-D CNN: can a convolutional network tell real spectra from their twins?

Same contract as ``classify.two_sample_test`` (and its ``ClassifierResult``): ``set_a`` label 1 (real), ``set_b``
label 0 (twin), bins not finite in every spectrum dropped, cross-validation grouped by night (``GroupKFold``),
out-of-fold logits -> ROC AUC (0.5 = indistinguishable), 2.5-97.5 % interval over night bootstrap resamples
(``classify._night_bootstrap``).

Network (``SpectrumCNN``): the first four encoder blocks of ``analysis.models.ae1d`` (its ``ENCODER_PLAN``
channels and kernels 1 -> 16 (k7) -> 16 (k5) -> 16 (k5) -> 32 (k3), its ``_conv`` block Conv1d + LeakyReLU(0.1),
its He initialisation) with strides (4, 2, 2, 2): output stride 32 bins (0.32 A), receptive field 87 bins
(0.87 A). As in the encoder's heads the feature map is flattened into a Linear layer, here to one logit; that
head keeps *where* a feature sits (one line, a telluric), which global average pooling would average away over
the whole window. Trainable parameters: 4,288 in the convolutions + 32 x ceil(m / 32) + 1 in the head (m bins).
``AE1D`` itself is not reused: it needs m a multiple of 2^depth and always builds 15 blocks up to 512 channels
plus a mirrored decoder (millions of parameters), far beyond what ~100 spectra can train in seconds on a CPU.

Input: first, with ``centre_nights`` (default), each spectrum minus the mean of all spectra (both sets) of its
night. This uses no labels, so the test stays valid; it removes what a night shares (line positions moving with
the barycentric correction, tellurics, the weather) and leaves the real-vs-twin differences within a night, which
is what a twin reproducing its real spectrum's conditions is meant to test. Without it, line shifts of 0.1 bin
(0.001 A) per night cut the AUC for a 4-sigma filled line core from 0.84-0.99 to 0.55-0.78 (synthetic spectra,
10 draws): the per-bin scatter in line flanks is then set by the shifts, which the PCA model of ``classify``
absorbs in its leading components instead. A night with a single spectrum becomes all zeros. Then, per bin,
``(x - mean) / std`` with the mean and standard deviation of the *training fold* only (std of bins constant there
set to 1).

Training: Adam, learning rate 1e-2, weight decay 0.1 (L2 added to the gradient), binary cross-entropy on the logit,
``epochs`` = 20 passes in shuffled mini-batches of 16, float32 on the CPU (the caller's torch thread count). The
decay is not small on purpose: with ~50-200 spectra and ~m inputs, Adam's nearly sign-sized steps at weak decay
(1e-4) spread the head's weight over every noise bin (a planted 6-sigma line core, 64 synthetic spectra x 2,000
bins: AUC ~0.7, where a ridge logistic regression on the same bins gives 0.94); a strong L2 term trained close to
its optimum behaves like that regularised fit. Deterministic for a given ``seed`` on one machine: weights drawn
inside ``torch.random.fork_rng`` after ``torch.manual_seed(seed)`` (the caller's global RNG state is restored),
batch order from a ``torch.Generator`` seeded with ``seed``.

Pixels it relies on (``weights``): saliency of the model refitted on all spectra, the mean over all spectra of
d(logit)/d(flux) per bin, per unit of continuum-normalised flux (night mean held fixed). A first-order, local
sensitivity of a non-linear model, not a global linear weight as in ``classify``; it is blurred over the
receptive field (a planted line core shows up within ~10 bins of its centre). Positive: higher flux reads as
"real". NaN for dropped bins. ``n_components`` holds the number of trainable parameters of that network.

Example
-------
>>> result = cnn_two_sample_test(real_n, twin_n, nights, nights, seed=1)
>>> result.auc, result.ci_low, result.ci_high, result.weights
"""

import numpy as np
import torch
from sklearn.model_selection import GroupKFold
from torch import nn

from analysis.models.ae1d import ENCODER_PLAN, SLOPE, _conv
from simharps.fidelity.classify import ClassifierResult, _night_bootstrap, roc_auc, stack_sets

STRIDES = (4, 2, 2, 2)


class SpectrumCNN(nn.Module):
    """ae1d encoder blocks 1..len(strides) with the given strides -> flatten -> Linear -> logit; input (batch, m)."""

    def __init__(self, n_bins, strides=STRIDES):
        super().__init__()
        plan = ENCODER_PLAN[:len(strides)]
        self.blocks = nn.Sequential(*(_conv(n_in, n_out, kernel, stride)
                                      for (n_in, n_out, kernel), stride in zip(plan, strides)))
        n_positions = int(n_bins)
        for stride in strides:                  # Conv1d(k odd, stride s, padding (k-1)//2): ceil(n / s) outputs
            n_positions = -(-n_positions // stride)
        self.head = nn.Linear(plan[-1][1] * n_positions, 1)
        for module in self.blocks.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, a=SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.head(self.blocks(x[:, None, :]).flatten(1))[:, 0]


def _fit(features, labels, epochs, batch_size, learning_rate, weight_decay, generator):
    """A trained ``SpectrumCNN`` with the per-bin input mean and scale of ``features`` (the training spectra)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    x = torch.as_tensor((features - mean) / scale, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    model = SpectrumCNN(features.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            optimiser.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    return model, mean, scale


def _logits(model, mean, scale, features, batch_size):
    x = torch.as_tensor((features - mean) / scale, dtype=torch.float32)
    with torch.no_grad():
        return np.concatenate([model(x[i:i + batch_size]).double().numpy() for i in range(0, len(x), batch_size)])


def _saliency(model, mean, scale, features, batch_size):
    """Mean over spectra of d(logit)/d(flux) per bin, per unit of normalised flux."""
    x = torch.as_tensor((features - mean) / scale, dtype=torch.float32)
    total = np.zeros(features.shape[1])
    for i in range(0, len(x), batch_size):
        batch = x[i:i + batch_size].requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(batch).sum(), batch)
        total += gradient.double().sum(axis=0).numpy()
    return total / len(x) / scale


def cnn_two_sample_test(set_a, set_b, groups_a, groups_b, *, n_splits=5, n_boot=1000, seed=0, epochs=20,
                        batch_size=16, learning_rate=1e-2, weight_decay=0.1, centre_nights=True):
    """Grouped-CV 1-D CNN telling ``set_a`` (label 1, e.g. real) from ``set_b`` (label 0).

    ``set_a``/``set_b``: (n_a, m) and (n_b, m) continuum-normalised spectra on one grid (bins not finite in every
    spectrum are dropped; their weight is NaN); ``groups_*``: the night of each spectrum. Returns a
    ``ClassifierResult`` whose ``n_components`` is the trainable-parameter count of the network.
    """
    features, labels, groups, valid = stack_sets(set_a, set_b, groups_a, groups_b, "the CNN classifier test")
    if centre_nights:
        for night in np.unique(groups):
            features[groups == night] -= features[groups == night].mean(axis=0)
    n_splits = min(n_splits, np.unique(groups).size)
    options = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay)
    scores = np.full(labels.size, np.nan)
    fold_aucs = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        for train, test in GroupKFold(n_splits=n_splits).split(features, labels, groups):
            model, mean, scale = _fit(features[train], labels[train], generator=generator, **options)
            scores[test] = _logits(model, mean, scale, features[test], batch_size)
            if np.unique(labels[test]).size == 2:
                fold_aucs.append(roc_auc(labels[test], scores[test]))
        model, mean, scale = _fit(features, labels, generator=generator, **options)
    auc = float(roc_auc(labels, scores))
    low, high = _night_bootstrap(labels, scores, groups, n_boot, seed)
    weights = np.full(valid.size, np.nan)
    weights[valid] = _saliency(model, mean, scale, features, batch_size)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ClassifierResult(auc, low, high, fold_aucs, scores, labels, weights, n_parameters, n_splits,
                            int(valid.sum()))
