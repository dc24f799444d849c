"""Models of the analysis: ae1d architecture (shapes, parameter counts, depth rule), PCA on planted low-rank
structure, loss terms, and a few optimisation steps of every torch model on tiny synthetic spectra."""

import numpy as np
import pytest
import torch

from analysis.models import (AE1D, FCAE, ModelOutput, PCAModel, ae1d_depth, build_model, count_parameters,
                             kl_divergence, kl_weight, masked_mse)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _released_keys():
    """state_dict keys of NimSed/astro-machines models/models.py ``ae1d`` (written out from the release)."""
    names = [f"conv{i}.0" for i in range(1, 16)] + ["fc11", "fc12", "fc2"]
    names += [f"deconv{i}.0" for i in range(15, 0, -1)] + ["predict0"]
    return [f"{name}.{p}" for name in names for p in ("weight", "bias")]


# (length, latent, variational) -> parameters, measured and checked against the released class at 327,680 / 128.
COUNTS = {(327680, 128, True): 7_046_997, (327680, 128, False): 5_736_149, (327680, 8, True): 3_360_357,
          (16384, 128, True): 3_301_717, (16384, 8, True): 3_117_157, (4096, 128, True): 3_137_877,
          (4096, 8, False): 2_949_213}


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_ae1d_parameter_counts(key):
    length, latent, variational = key
    assert count_parameters(AE1D(length, latent, variational=variational)) == COUNTS[key]


def test_ae1d_full_size_matches_release_layout_and_shapes():
    model = AE1D(327680)
    assert list(model.state_dict()) == _released_keys()
    assert model.fc11.in_features == 10240 and model.fc2.out_features == 10240
    assert model.conv1[0].kernel_size == (7,) and model.conv2[0].kernel_size == (5,)
    assert [getattr(model, f"conv{i}")[0].stride[0] for i in range(1, 16)] == [2] * 14 + [1]
    assert model.deconv15[0].kernel_size == (3,) and model.deconv1[0].kernel_size == (4,)
    assert model.conv1[1].negative_slope == 0.1
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 327680))
    assert out.reconstruction.shape == (1, 327680) and out.mean.shape == (1, 128) and out.logvar.shape == (1, 128)
    deterministic = AE1D(327680, variational=False)
    assert "fc12.weight" not in deterministic.state_dict()


@pytest.mark.parametrize("length, depth, bottleneck", [(16384, 14, 1), (4096, 12, 1), (49152, 14, 3)])
def test_ae1d_short_inputs(length, depth, bottleneck):
    model = AE1D(length, latent_dim=8, variational=False).eval()
    assert model.depth == depth and model.bottleneck == (512, bottleneck)
    strides = [getattr(model, f"conv{i}")[0].stride[0] for i in range(1, 16)]
    assert strides == [2] * depth + [1] * (15 - depth)
    with torch.no_grad():
        out = model(torch.randn(2, length))
    assert out.reconstruction.shape == (2, length) and out.mean.shape == (2, 8) and out.logvar is None


def test_ae1d_depth_rule_and_errors():
    assert ae1d_depth(327680) == 14 and ae1d_depth(4096) == 12 and ae1d_depth(12288, depth=12) == 12
    with pytest.raises(ValueError, match=r"11000 is not a multiple of 2\^13.*depth <= 3"):
        ae1d_depth(11000)
    with pytest.raises(ValueError, match="multiple of"):
        AE1D(12288)                                     # derived depth 13; 12288 = 3 x 2^12
    with pytest.raises(ValueError, match="depth must be in"):
        ae1d_depth(2**15, depth=15)
    for latent in (3, 8193):
        with pytest.raises(ValueError, match="latent_dim"):
            AE1D(4096, latent_dim=latent)
    with pytest.raises(ValueError, match=r"shape \(batch, 4096\)"):
        AE1D(4096, 8)(torch.zeros(2, 1, 4096))


def test_fcae_layout():
    model = FCAE(11000)
    widths = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 128, 32, 2, 32, 128, 512, 11000]
    assert isinstance(model.decoder[-1], torch.nn.Linear)   # linear output
    assert count_parameters(FCAE(11000, variational=True)) == count_parameters(model) + 32 * 2 + 2


def _spectra(n, length, seed=0):
    """Continuum slopes times Gaussian absorption lines of random depth: a few degrees of freedom per spectrum."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1, 1, length)
    lines = np.exp(-0.5 * ((grid[None, :] - np.linspace(-0.8, 0.8, 6)[:, None]) / 0.02) ** 2)
    flux = (1 + 0.2 * rng.normal(size=(n, 1)) * grid) * (1 - rng.uniform(0, 0.6, (n, 6)) @ lines)
    return torch.tensor(flux, dtype=torch.float32)


@pytest.mark.parametrize("kind, options, length", [
    ("fc_ae", {}, 64), ("fc_ae", {"variational": True, "latent_dim": 4}, 64),
    ("ae1d", {"latent_dim": 8}, 256), ("ae1d", {"latent_dim": 8, "variational": False}, 256)])
def test_loss_falls(kind, options, length):
    torch.manual_seed(0)
    model = build_model(kind, length, **options)
    x = _spectra(32, length)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        out = model(x)
        total, count = masked_mse(out.reconstruction, x, torch.ones_like(x))
        loss = total / count + (0.01 * kl_divergence(out.mean, out.logvar) if out.logvar is not None else 0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * losses[0]


def test_vae_samples_in_training_only():
    torch.manual_seed(1)
    model = FCAE(32, latent_dim=4, variational=True)
    x = torch.randn(5, 32)
    model.eval()
    first, second = model(x), model(x)
    assert isinstance(first, ModelOutput)
    assert torch.equal(first.reconstruction, second.reconstruction)
    assert torch.equal(first.reconstruction, model.decode(model.encode(x)))
    model.train()
    sampled = model(x)
    assert torch.equal(sampled.mean, first.mean) and not torch.equal(sampled.reconstruction, first.reconstruction)


def test_seed_alone_fixes_weights():
    def weights(seed):
        torch.manual_seed(seed)
        return list(AE1D(1024, 8).state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(weights(5), weights(5)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(5), weights(6)))


def test_masked_mse_ignores_masked_pixels():
    target = torch.tensor([[1.0, float("nan"), 3.0, float("inf")]])
    mask = torch.tensor([[True, False, True, False]])
    recon = torch.tensor([[2.0, 100.0, 1.0, -5.0]], requires_grad=True)
    total, count = masked_mse(recon, target, mask)
    assert total.item() == 5.0 and count.item() == 2
    total.backward()
    assert torch.equal(recon.grad, torch.tensor([[2.0, 0.0, -4.0, 0.0]]))
    weight = torch.tensor([[2.0, float("nan"), 0.5, 1.0]])
    assert masked_mse(recon, target, mask.float(), weight)[0].item() == 2.0 * 1 + 0.5 * 4
    assert masked_mse(recon, torch.zeros(1, 4))[1].item() == 4
    half = torch.full((1, 4), 300.0, dtype=torch.float16)
    assert masked_mse(half, -half)[0].dtype == torch.float32 and masked_mse(half, -half)[0].item() == 4 * 600.0**2


def test_kl_terms():
    zeros = torch.zeros(3, 4)
    assert kl_divergence(zeros, zeros).item() == 0.0
    mean, logvar = torch.full((2, 2), 2.0), torch.zeros(2, 2)
    assert kl_divergence(mean, logvar).item() == pytest.approx(2.0)      # 0.5 * mean^2 per latent
    assert [kl_weight(i) for i in (0, 5000, 12500, 20000, 10**6)] == [0.0, 0.0, 0.15, 0.3, 0.3]
    assert kl_weight(10, start=0, stop=20, max_weight=1.0) == 0.5


def _planted(n=400, channels=200, rank=3, sigma=0.01, seed=2):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(channels, rank)))[0].T            # orthonormal rows
    signal = (rng.normal(size=(n, rank)) * [3.0, 2.0, 1.0]) @ basis + 5.0
    return (signal + sigma * rng.normal(size=(n, channels))).astype(np.float32), basis, sigma


@pytest.mark.parametrize("incremental", [False, True])
def test_pca_recovers_planted_structure(incremental, tmp_path):
    x, basis, sigma = _planted()
    model = PCAModel(200, latent_dim=3, incremental=incremental, batch_size=64).fit(x)
    assert model.explained_variance_ratio.sum() > 0.99
    overlap = np.linalg.svd(model.components @ basis.T, compute_uv=False)   # cosines of principal angles
    assert overlap.min() > 0.999
    z = model.encode(x)
    assert z.shape == (400, 3) and z.dtype == np.float32
    residual_rms = np.sqrt(np.mean((model.decode(z) - x) ** 2))
    assert residual_rms == pytest.approx(sigma * np.sqrt(197 / 200), rel=0.05)   # the noise left off the subspace
    model.save(tmp_path / "pca.npz")
    loaded = PCAModel.load(tmp_path / "pca.npz")
    assert loaded.config == model.config and np.array_equal(loaded.encode(x), z)


def test_pca_iterable_of_uneven_batches():
    x, basis, _ = _planted()
    batches = (x[i:i + 37] for i in range(0, len(x), 37))                   # last batch of 30, and 37 < 64
    model = PCAModel(200, latent_dim=3, batch_size=64).fit(batches)
    assert model.n_samples == 400
    assert np.linalg.svd(model.components @ basis.T, compute_uv=False).min() > 0.999
    with pytest.raises(ValueError, match="cannot give"):
        PCAModel(200, latent_dim=3).fit(iter([x[:2]]))


def test_build_model_errors_and_config_round_trip():
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("gplvm", 100)
    with pytest.raises(ValueError, match=r"unknown options \['latent'\]"):
        build_model("fc_ae", 100, latent=3)
    for model in (build_model("fc_ae", 100, hidden=(16, 8)), build_model("ae1d", 512, latent_dim=4),
                  build_model("pca", 100, latent_dim=5)):
        assert build_model(model.kind, **model.config).config == model.config
    assert count_parameters(build_model("pca", 100, latent_dim=5)) == 600
