"""The report's matplotlib figures, each returned as a base64 PNG data URI (Agg canvas, no pyplot state).

Every axis carries its unit: parameter names end in their unit (docs/contracts.md), which ``axis_label`` spells
out; latent coordinates are in the model's arbitrary units.
"""

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

DPI = 80
UNIT_SUFFIXES = (("_kms", "km/s"), ("_arcsec", "arcsec"), ("_nats", "nats"), ("_cgs", "dex, cgs"),
                 ("_deg", "deg"), ("_mag", "mag"), ("_dex", "dex"), ("_aa", "Å"), ("_mm", "mm"), ("_pc", "pc"),
                 ("_k", "K"), ("_s", "s"), ("_h", "h"), ("_d", "d"), ("_m", "m"))
NAMED_UNITS = {"mjd_utc": "d", "airmass": "dimensionless", "rv_dust": "dimensionless",
               "snr_550": "dimensionless", "snr_adp": "dimensionless"}
GROUP_ORDER = ("intrinsic", "extrinsic", "kinematic")
MAX_POINTS = 4000
MAX_TRACKS = 10


def plain(text):
    """Text safe for matplotlib (no mathtext from '$' in data strings)."""
    return str(text).replace("$", r"\$")


def axis_label(name):
    """``teff_k`` -> ``teff_k [K]``; names without a unit suffix say so."""
    unit = NAMED_UNITS.get(name) or next((u for s, u in UNIT_SUFFIXES if name.lower().endswith(s)), "no unit")
    return plain(f"{name} [{unit}]")


def new_figure(width, height):
    """A figure of ``width`` x ``height`` inches at the report's resolution, constrained layout."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def to_uri(fig):
    """The figure as a PNG data URI, reduced to a 256-colour palette (a third of the bytes, same look)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    buffer = io.BytesIO()
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(n, ncols, width=3.0, height=2.4):
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    fig = new_figure(width * ncols, height * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def histograms(columns, tables):
    """One panel per column, the datasets' distributions overlaid; ``tables``: {dataset: {column: values}}."""
    fig, axes = _grid(len(columns), 4)
    for ax, column in zip(axes, columns):
        parts = {name: np.asarray(t[column], float) for name, t in tables.items() if column in t}
        parts = {name: v[np.isfinite(v)] for name, v in parts.items()}
        finite = np.concatenate(list(parts.values()))
        edges = np.histogram_bin_edges(finite, bins=min(30, max(5, int(np.sqrt(finite.size)))))
        for name, values in parts.items():
            if values.size:
                ax.hist(values, bins=edges, weights=np.full(values.size, 1 / values.size), histtype="step",
                        lw=1.5, label=plain(f"{name} (n={values.size})"))
        ax.set_xlabel(axis_label(column))
        ax.set_ylabel("fraction of spectra")
        ax.legend(fontsize=7)
    return to_uri(fig)


def loss_curves(histories):
    """Train and validation loss per epoch, one panel per model; ``histories``: {model: [epoch dicts]}."""
    fig, axes = _grid(len(histories), 3, 3.6, 2.6)
    for ax, (model, epochs) in zip(axes, histories.items()):
        x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
        for key in ("train_loss", "val_loss"):
            y = np.array([e.get(key, np.nan) for e in epochs], dtype=float)
            if np.isfinite(y).any():
                ax.plot(x, y, marker=".", label=key.replace("_", " "))
        values = np.array([e.get(k) for e in epochs for k in ("train_loss", "val_loss") if e.get(k) is not None],
                          dtype=float)
        if values.size and np.all(values[np.isfinite(values)] > 0):
            ax.set_yscale("log")
        ax.set_title(plain(model))
        ax.set_xlabel("epoch [count]")
        ax.set_ylabel("loss [training objective units]")
        ax.legend(fontsize=7)
    return to_uri(fig)


def _ordered_columns(cols, groups):
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(range(len(cols)), key=lambda j: (rank.get(groups.get(cols[j]), len(GROUP_ORDER)), j))


def mi_heatmaps(matrices, groups):
    """Latent x factor heatmaps side by side, factors grouped; ``matrices``: [(title, unit, matrix dict)]."""
    fig = new_figure(0.1 + 5.2 * len(matrices), 1.4 + 0.32 * max(len(m["rows"]) for _, _, m in matrices))
    for ax, (title, unit, matrix) in zip(fig.subplots(1, len(matrices), squeeze=False)[0], matrices):
        cols = [str(c) for c in matrix["cols"]]
        order = _ordered_columns(cols, groups)
        values = np.array(matrix["values"], dtype=float)[:, order]
        cols = [cols[j] for j in order]
        image = ax.imshow(values, aspect="auto", cmap="magma")
        fig.colorbar(image, ax=ax, label=plain(unit))
        ax.set_xticks(range(len(cols)), [plain(c) for c in cols], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(matrix["rows"])), [plain(r) for r in matrix["rows"]], fontsize=7)
        ax.set_ylabel("latent coordinate")
        ax.set_title(plain(title), fontsize=9)
        if values.size <= 160:
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="w" if v < np.nanmean(values) else "k")
        labels = [groups.get(c, "other") for c in cols]
        for j in range(1, len(cols)):
            if labels[j] != labels[j - 1]:
                ax.axvline(j - 0.5, color="c", lw=2)
        names = list(dict.fromkeys(labels))
        top = ax.secondary_xaxis("top")
        top.set_xticks([np.mean([j for j, lab in enumerate(labels) if lab == g]) for g in names],
                       [plain(g) for g in names], fontsize=8, color="teal")
        top.tick_params(length=0)
    return to_uri(fig)


def _thin(mask):
    """Indices where ``mask``, evenly thinned to at most MAX_POINTS."""
    index = np.flatnonzero(mask)
    return index[::-(-index.size // MAX_POINTS) or 1]


def latent_scatter(xy, labels, factors, limits=None, colours=None):
    """Latent points coloured by each factor (1-D latent: latent against factor); ``factors``: {name: values}.

    ``limits``: axis ranges [(x0, x1), (y0, y1)]; ``colours``: {factor: (vmin, vmax)}.
    """
    fig, axes = _grid(len(factors), 4, 3.1, 2.6)
    for ax, (name, values) in zip(axes, factors.items()):
        good = _thin(np.isfinite(values) & np.all(np.isfinite(xy), axis=1))
        if xy.shape[1] == 1:
            ax.scatter(values[good], xy[good, 0], s=4)
            ax.set_xlabel(axis_label(name))
            ax.set_ylabel(labels[0])
            continue
        vmin, vmax = (colours or {}).get(name, (None, None))
        points = ax.scatter(xy[good, 0], xy[good, 1], c=values[good], s=4, cmap="viridis", vmin=vmin, vmax=vmax)
        fig.colorbar(points, ax=ax, label=axis_label(name))
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        if limits is not None:
            ax.set_xlim(limits[0])
            ax.set_ylim(limits[1])
    return to_uri(fig)


def repeat_tracks(xy, labels, tracks, limits=None):
    """Each target's points joined in epoch order over the whole set in grey; ``tracks``: {target: indices}."""
    fig = new_figure(5.6, 4.2)
    ax = fig.subplots()
    one_d = xy.shape[1] == 1
    if not one_d:
        every = _thin(np.all(np.isfinite(xy), axis=1))
        ax.scatter(xy[every, 0], xy[every, 1], s=3, c="0.8", label="all spectra")
    for target, index in tracks.items():
        x, y = (np.arange(index.size), xy[index, 0]) if one_d else (xy[index, 0], xy[index, 1])
        line, = ax.plot(x, y, marker="o", ms=3, lw=1, label=plain(f"{target} ({index.size})"))
        ax.plot(x[0], y[0], marker="s", ms=6, color=line.get_color())
    ax.set_xlabel("epoch order [index]" if one_d else labels[0])
    ax.set_ylabel(labels[0] if one_d else labels[1])
    if limits is not None and not one_d:
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
    ax.legend(fontsize=6, loc="best", ncol=2, title="target (epochs), square = first", title_fontsize=6)
    return to_uri(fig)
