"""One training loop for every model, on real and simulated datasets alike.

``train_model(model_config, analysis_config, dataset, model_dir, cache_root)``:

1. the model's preprocessing (section defaults merged with its overrides) is built once into the memory-mapped
   cache (``analysis.cache``); the split by target or night (``analysis.split``) goes to ``split.npy``;
2. ``pca``: scikit-learn PCA (IncrementalPCA in batches when the training matrix would exceed
   ``PCA_IN_MEMORY_BYTES`` or ``incremental: true``) fitted on the training spectra, masked channels 0;
3. torch models: Adam at ``learning_rate``, schedule ``plateau`` (ReduceLROnPlateau on the validation loss,
   factor 0.5, patience 2), ``cosine`` or ``none``; loss = sum over channels of weight x (output - input)^2
   divided by the number of unmasked channels of the batch (weight 1, or the normalised inverse variance), plus
   for VAEs the KL divergence averaged over batch and latents times a weight rising linearly from 0 to
   ``kl.max_weight`` between iterations ``kl.start`` and ``kl.stop``; batches are drawn from
   ``numpy.random.default_rng((seed, epoch))`` (a permutation, or with ``equal_weight_per_star`` a draw with
   replacement with probability 1 / (spectra of that star)); early stopping on the validation loss restores the
   best epoch's weights;
4. a checkpoint (weights, optimiser, scheduler, epoch, iteration, history, best weights, torch RNG) is written
   atomically after every epoch and a re-run resumes from it: killed and resumed = uninterrupted, because the data
   order depends only on (seed, epoch) and the RNG state is restored;
5. determinism: same config + seed on the same machine gives identical weights (``torch.manual_seed(seed)``,
   deterministic algorithms, a fixed thread count);
6. data parallel: launched by ``torchrun --nproc_per_node N``, every rank takes the ranks-th share of each global
   batch and the loss is normalised by the all-reduced unmasked-channel count (DistributedDataParallel averages
   gradients, so each rank's loss is multiplied by the world size): the weights equal a one-process run with the
   same global batch to float tolerance (tested with gloo on CPU).

Device ``auto``: CUDA with bfloat16 autocast when present, else the CPU with ``threads`` threads (default: all
cores, at most 8). The per-model outputs follow DESIGN.md "Analysis contracts".
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from analysis import split as splitting
from analysis.cache import build_cache
from analysis.config import PreprocessingConfig, TrainingConfig, merged_options
from analysis.models import PCAModel, build_model, kl_divergence, kl_weight, masked_mse
from simharps.dataset import write_json
from simharps.dataset.jsonio import package_versions

PCA_IN_MEMORY_BYTES = 2 * 1024**3
"""Above this size of the float32 training matrix, PCA is fitted incrementally in batches."""

CHECKPOINT = "checkpoint.pt"


# --------------------------------------------------------------------------------------------- helpers


def versions():
    """The dataset layer's package versions plus those of the learning stack."""
    import sklearn

    return {**package_versions(), "torch": torch.__version__, "scikit-learn": sklearn.__version__}


def model_options(model_config):
    """Options of ``build_model`` from a ``ModelConfig`` (unset ones take the model's defaults)."""
    options = {"latent_dim": model_config.latent_dim}
    for key in ("variational", "hidden", "incremental", "init"):
        value = getattr(model_config, key)
        if value is not None:
            options[key] = value
    return options


def resolved_configs(model_config, analysis_config):
    """(PreprocessingConfig, TrainingConfig) of a model: the section's, with the model's overrides merged in."""
    return (merged_options(analysis_config.preprocessing, model_config.preprocessing, PreprocessingConfig),
            merged_options(analysis_config.training, model_config.training, TrainingConfig))


def select_device(name, threads=None):
    """(torch.device, description). ``auto``: CUDA when available, else the CPU with ``threads`` threads."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), f"cuda ({torch.cuda.get_device_name(0)}), bfloat16 autocast"
    if name == "cuda":
        raise ValueError("device cuda requested but torch sees no CUDA device; use device: auto or cpu")
    threads = threads or min(os.cpu_count() or 1, 8)
    torch.set_num_threads(threads)
    return torch.device("cpu"), f"cpu, {threads} thread(s)"


class Distributed:
    """The torchrun environment (world size 1 when not launched by torchrun)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        if self.active and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def main(self):
        return self.rank == 0

    def all_sum(self, value):
        if not self.active:
            return value
        tensor = torch.as_tensor(value, dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return tensor.item()

    def barrier(self):
        if self.active:
            torch.distributed.barrier()


# ------------------------------------------------------------------------------------------ the entry


def prepare(model_config, analysis_config, dataset, cache_root, *, progress=False):
    """(cache, split labels, preprocessing, training) for a model on a dataset."""
    preprocessing, training = resolved_configs(model_config, analysis_config)
    try:
        cache = build_cache(dataset, preprocessing, cache_root, progress=progress)
        labels = splitting.make_split(dataset.table, cache.usable, analysis_config.split)
    except ValueError as error:
        raise ValueError(f"model {model_config.name}: {error}") from error
    return cache, labels, preprocessing, training


def train_model(model_config, analysis_config, dataset, model_dir, cache_root, *, progress=True, max_epochs=None):
    """Train (or resume, or find finished) one model; returns the config.json dict.

    ``max_epochs`` stops after that many epochs of this call (for tests of resuming: a "killed" run).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    dist = Distributed()
    cache, labels, preprocessing, training = prepare(model_config, analysis_config, dataset, cache_root,
                                                     progress=progress and dist.main)
    device, device_text = select_device(training.device, training.threads)
    config = {
        "model": model_config.model_dump(mode="json"), "preprocessing": preprocessing.model_dump(mode="json"),
        "training": training.model_dump(mode="json"), "split": analysis_config.split.model_dump(mode="json"),
        "dataset": {"path": str(Path(dataset.path).resolve()), "fingerprint": dataset.manifest["fingerprint"],
                    "source": dataset.manifest.get("source"), "n": len(dataset)},
        "n_channels": cache.n_channels, "cache": str(cache.path), "filtered": cache.meta["filtered"],
        "split_counts": {name: int(np.sum(labels == name)) for name in splitting.LABELS},
        "versions": versions(), "device": device_text, "world_size": dist.world,
    }
    identity = {key: config[key] for key in ("model", "preprocessing", "training", "split", "dataset")}
    previous = _read_json(model_dir / "config.json")
    if previous is not None and {k: previous.get(k) for k in identity} != identity:
        # a different model, preprocessing, training or dataset: start again
        for name in (CHECKPOINT, "history.json"):
            (model_dir / name).unlink(missing_ok=True)
    if dist.main:
        np.save(model_dir / "split.npy", labels)
        write_json(model_dir / "config.json", config)
    train_indices = np.flatnonzero(labels == "train")
    val_indices = np.flatnonzero(labels == "validation")
    if model_config.kind == "pca":
        if dist.main:
            _fit_pca(model_config, cache, train_indices, val_indices, model_dir)
    else:
        _fit_torch(model_config, training, cache, dataset, labels, train_indices, val_indices, model_dir, device,
                   dist, progress=progress and dist.main, max_epochs=max_epochs)
    dist.barrier()
    return config


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ PCA


def _fit_pca(model_config, cache, train_indices, val_indices, model_dir):
    if (model_dir / "pca.npz").exists() and (model_dir / "history.json").exists():
        return _read_json(model_dir / "history.json")
    started = time.perf_counter()
    n_bytes = train_indices.size * cache.n_channels * 4
    incremental = bool(model_config.incremental) or n_bytes > PCA_IN_MEMORY_BYTES
    pca = PCAModel(cache.n_channels, model_config.latent_dim, incremental=incremental)
    if incremental:
        batch = max(model_config.latent_dim, 256)
        pca.fit(cache.prepared(train_indices[i:i + batch]).x for i in range(0, train_indices.size, batch))
    else:
        pca.fit(cache.prepared(train_indices).x)
    pca.save(model_dir / "pca.npz")
    losses = {}
    for name, indices in (("train_loss", train_indices), ("val_loss", val_indices)):
        losses[name] = _pca_loss(pca, cache, indices) if indices.size else None
    history = {"kind": "pca", "incremental": incremental,
               "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
               "epochs": [{"epoch": 1, **losses, "seconds": time.perf_counter() - started}]}
    write_json(model_dir / "history.json", history)
    return history


def _pca_loss(pca, cache, indices, batch=256):
    total, count = 0.0, 0.0
    for start in range(0, indices.size, batch):
        prepared = cache.prepared(indices[start:start + batch])
        output = pca.decode(pca.encode(prepared.x))
        total += float(np.sum(prepared.weight * (output - prepared.x) ** 2))
        count += float(prepared.mask.sum())
    return total / max(count, 1.0)


# ---------------------------------------------------------------------------------------------- torch


def _batches(train_indices, star_of, epoch, training):
    """Global batches of one epoch: a permutation of the training spectra, or (equal weight per star) a draw with
    replacement with probability 1 / (spectra of that star); both from rng((seed, epoch))."""
    rng = np.random.default_rng((training.seed, epoch))
    if training.equal_weight_per_star:
        stars, inverse, counts = np.unique(star_of[train_indices], return_inverse=True, return_counts=True)
        p = 1.0 / counts[inverse]
        order = rng.choice(train_indices, size=train_indices.size, replace=True, p=p / p.sum())
    else:
        order = rng.permutation(train_indices)
    return [order[i:i + training.batch_size] for i in range(0, order.size, training.batch_size)]


def _to_tensors(prepared, device):
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return as_tensor(prepared.x), as_tensor(prepared.mask), as_tensor(prepared.weight)


def _step_loss(model, x, mask, weight, iteration, training, batch_global, dist, device):
    """Loss of this rank's share of a global batch, scaled so that DDP's gradient average equals the gradient of
    the global loss. Returns (loss tensor to backpropagate, global reconstruction loss, global KL)."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _nullcontext()
    with autocast:
        output = model(x)
    squares, n_unmasked = masked_mse(output.reconstruction.float(), x, mask, weight)
    n_global = dist.all_sum(float(n_unmasked))
    reconstruction = squares / max(n_global, 1.0)
    loss = reconstruction
    kl_value = torch.zeros((), device=device)
    if output.logvar is not None:
        kl_value = kl_divergence(output.mean.float(), output.logvar.float()) * (x.shape[0] / batch_global)
        loss = loss + kl_weight(iteration, training.kl.start, training.kl.stop, training.kl.max_weight) * kl_value
    return loss * dist.world, dist.all_sum(reconstruction.item()), dist.all_sum(kl_value.item())


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _evaluate_loss(model, cache, indices, device, batch=64):
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, indices.size, batch):
            x, mask, weight = _to_tensors(cache.prepared(indices[start:start + batch]), device)
            squares, n = masked_mse(model(x).reconstruction.float(), x, mask, weight)
            total += float(squares)
            count += float(n)
    model.train()
    return total / max(count, 1.0)


def _scheduler(optimizer, training):
    if training.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    if training.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
    return None


def build_torch_model(model_config, n_channels, seed):
    torch.manual_seed(seed)
    return build_model(model_config.kind, n_channels, **model_options(model_config))


def _fit_torch(model_config, training, cache, dataset, labels, train_indices, val_indices, model_dir, device, dist,
               *, progress, max_epochs):
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_torch_model(model_config, cache.n_channels, training.seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.learning_rate)
    scheduler = _scheduler(optimizer, training)
    state = {"epoch": 0, "iteration": 0, "history": [], "best_val": math.inf, "best_state": None, "bad_epochs": 0,
             "done": False}
    checkpoint_path = model_dir / CHECKPOINT
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
    if state["done"]:
        return
    wrapped = model
    if dist.active:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    star_of = splitting.groups_of(dataset.table, "target") if "target_id" in dataset.table.colnames else \
        np.arange(len(dataset)).astype(str)
    bar = _progress_bar(training.epochs, state["epoch"], progress)
    epochs_run = 0
    model.train()
    while state["epoch"] < training.epochs and not state["done"]:
        if max_epochs is not None and epochs_run >= max_epochs:
            break
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        sums = {"loss": 0.0, "kl": 0.0}
        batches = _batches(train_indices, star_of, epoch, training)
        if dist.active:   # every rank needs a share of every global batch
            batches = [batch for batch in batches if len(batch) >= dist.world]
        for batch in batches:
            share = batch[dist.rank::dist.world]
            x, mask, weight = _to_tensors(cache.prepared(share, epoch=epoch, seed=training.seed), device)
            loss, reconstruction, kl_value = _step_loss(wrapped, x, mask, weight, state["iteration"], training,
                                                        len(batch), dist, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["iteration"] += 1
            sums["loss"] += reconstruction
            sums["kl"] += kl_value
        seconds = time.perf_counter() - started
        val_loss = _evaluate_loss(model, cache, val_indices, device) if val_indices.size else None
        entry = {"epoch": epoch, "train_loss": sums["loss"] / max(len(batches), 1),
                 "train_kl": sums["kl"] / max(len(batches), 1), "val_loss": val_loss,
                 "learning_rate": optimizer.param_groups[0]["lr"], "seconds": seconds,
                 "spectra_per_second": train_indices.size / seconds if seconds > 0 else None,
                 "iteration": state["iteration"]}
        state["history"].append(entry)
        monitored = val_loss if val_loss is not None else entry["train_loss"]
        if scheduler is not None:
            scheduler.step(monitored) if training.schedule == "plateau" else scheduler.step()
        stopping = training.early_stopping
        if monitored < state["best_val"] - (stopping.min_delta if stopping else 0.0):
            state["best_val"] = monitored
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            state["best_epoch"] = epoch
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        if (stopping is not None and state["bad_epochs"] >= stopping.patience) or epoch >= training.epochs:
            state["done"] = True
            state["stopped_early"] = epoch < training.epochs
            model.load_state_dict(state["best_state"])
        if dist.main:
            _save_checkpoint(checkpoint_path, model, optimizer, scheduler, state)
            write_json(model_dir / "history.json", {"kind": model_config.kind, "epochs": state["history"],
                                                    "best_epoch": state.get("best_epoch"),
                                                    "stopped_early": state.get("stopped_early", False),
                                                    "done": state["done"]})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{entry['train_loss']:.4g}", val=f"{val_loss:.4g}" if val_loss else "-",
                            spectra_s=f"{entry['spectra_per_second']:.0f}")
        epochs_run += 1
    if bar is not None:
        bar.close()


def _save_checkpoint(path, model, optimizer, scheduler, state):
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "state": state}, tmp)
    tmp.replace(path)


def _progress_bar(total, done, enabled):
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="train", unit="epoch", leave=False)


def load_trained(model_dir, device="cpu"):
    """(model or PCAModel, config dict) of a trained model directory."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if config is None:
        raise ValueError(f"{model_dir}: no config.json (not a trained model directory)")
    from analysis.config import ModelConfig

    model_config = ModelConfig.model_validate(config["model"])
    if model_config.kind == "pca":
        if not (model_dir / "pca.npz").exists():
            raise ValueError(f"{model_dir}: PCA not fitted yet (no pca.npz)")
        return PCAModel.load(model_dir / "pca.npz"), config
    if not (model_dir / CHECKPOINT).exists():
        raise ValueError(f"{model_dir}: no checkpoint.pt (training has not run)")
    saved = torch.load(model_dir / CHECKPOINT, map_location=device, weights_only=False)
    if not saved["state"]["done"]:
        raise ValueError(f"{model_dir}: training has not finished (run the same command again to resume)")
    model = build_model(model_config.kind, config["n_channels"], **model_options(model_config))
    model.load_state_dict(saved["model"])
    model.eval()
    return model, config
