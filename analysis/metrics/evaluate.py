"""``evaluate``: latents + dataset table (+ reconstructions) -> the "simharps-metrics/1" document.

Rows: spectra with ``failed`` False and finite latents. Clusters (grouped folds and subsampling): ``target_id``, or
the night for a single-star series. Informative latents: MAD > ``informative_mad``. Options (``config``, a mapping
or a pydantic model; see ``DEFAULTS`` and docs/metrics.md): ``factors`` (null = automatic), ``ksg_k``,
``n_subsamples``, ``subsample_fraction``, ``n_permutations``, ``unique_per_star``, ``per_target_weighting``,
``seed``, ``n_folds``, ``bins``, ``study_bins``, ``informative_mad``, ``min_median_flux``,
``significance_sigma``, ``top_candidates``.

Example
-------
>>> doc = evaluate(latents, open_dataset(path).table, model="pca8",
...                dataset_info={"name": "sim", "fingerprint": "...", "source": "simulated"})   # doctest: +SKIP
>>> print(format_table(doc))                                                                  # doctest: +SKIP
"""

import numpy as np

from analysis.metrics import disentanglement as dis
from analysis.metrics import mutual_info as mi
from analysis.metrics import repeat
from analysis.metrics.factors import GROUPS, cluster_labels, colnames, select_factors
from analysis.metrics.intervals import fold_interval, jackknife_interval, subsample_rows
from analysis.metrics.schema import SCHEMA, entry, json_safe, matrix
from analysis.metrics.telluric import estimate_expected, telluric_rejection

DEFAULTS = {"factors": None, "ksg_k": 3, "n_subsamples": 20, "subsample_fraction": 0.5, "n_permutations": 20,
            "unique_per_star": False, "per_target_weighting": False, "seed": 0, "n_folds": 5, "bins": 20,
            "study_bins": mi.STUDY_BINS, "informative_mad": dis.INFORMATIVE_MAD, "min_median_flux": 50.0,
            "significance_sigma": 4.0, "top_candidates": 4}
TELLURIC_METRICS = ("telluric.rejection", "stellar.rejection", "telluric.residual_rms_noise",
                    "stellar.residual_rms_noise", "continuum.residual_rms_noise")
CONTINUUM_BLOCK_AA = 20.0


def metrics_config(config=None):
    """Options merged over ``DEFAULTS``; an unknown key raises ``ValueError`` naming it."""
    if config is None:
        given = {}
    elif hasattr(config, "model_dump"):
        given = config.model_dump()
    else:
        given = dict(config)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown metrics option(s): {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    options = {**DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS}}
    if not 0 < options["subsample_fraction"] < 1:
        raise ValueError(f"subsample_fraction must be in (0, 1), got {options['subsample_fraction']}")
    return options


class _Context:
    """The analysed rows and everything derived from them once."""

    def __init__(self, latents, table, options, median_flux):
        z = np.asarray(latents, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != len(table):
            raise ValueError(f"latents have shape {z.shape}, expected ({len(table)}, n_latent): one row per "
                             "spectrum_index of the table")
        usable = np.all(np.isfinite(z), axis=1)
        if "failed" in colnames(table):
            usable &= ~np.asarray(table["failed"], dtype=bool)
        self.rows = np.flatnonzero(usable)
        self.table, self.options = table, options
        self.z = z[self.rows]
        self.n, self.n_latent = self.z.shape
        self.latent_names = [f"z{i}" for i in range(self.n_latent)]
        self.factors, self.skipped = select_factors(table, options["factors"], self.rows)
        self.scored = [f for f in self.factors if not f.identity]
        self.clusters, self.cluster_by = cluster_labels(table, self.rows)
        self.informative = dis.informative_latents(self.z, options["informative_mad"]) if self.n else \
            np.zeros(self.n_latent, bool)
        self.draws = subsample_rows(self.clusters, options["n_subsamples"], options["subsample_fraction"],
                                    options["seed"])
        self.mi_rows, self.weights = self._mi_rows()
        self.median_flux = None if median_flux is None else np.asarray(median_flux, np.float64)[self.rows]

    def _mi_rows(self):
        rows = np.arange(self.n)
        targets = (np.asarray(self.table["target_id"]).astype(str)[self.rows] if "target_id" in colnames(self.table)
                   else np.zeros(self.n, dtype=str))
        if self.options["unique_per_star"]:
            rows = np.unique(targets, return_index=True)[1]          # the first (lowest spectrum_index) per star
        weights = None
        if self.options["per_target_weighting"]:
            counts = np.unique(targets, return_inverse=True, return_counts=True)
            weights = 1.0 / counts[2][counts[1]]
        return np.sort(rows), weights

    def scored_matrix(self):
        """(n, K) float64 of the non-identity factors (discrete codes as floats, missing NaN), and their flags."""
        columns = [np.where(f.known, f.values, np.nan).astype(np.float64) for f in self.scored]
        return (np.column_stack(columns) if columns else np.zeros((self.n, 0))), [f.discrete for f in self.scored]

    @property
    def params(self):
        return {"clusters": self.cluster_by, "n_clusters": int(np.unique(self.clusters).size),
                "n_subsamples": len(self.draws), "fraction": self.options["subsample_fraction"]}


def _jackknife(ctx, value, values):
    return jackknife_interval(value, values, ctx.options["subsample_fraction"])


def _histogram_scores(ctx, z, v, flags):
    """(mig, modularity over all, modularity over informative, MI matrix, entropies)."""
    if v.shape[1] == 0 or z.shape[0] < 2:
        return np.nan, np.nan, np.nan, np.full((z.shape[1], v.shape[1]), np.nan), np.zeros(v.shape[1])
    hist_mi, entropy = dis.histogram_mi(z, v, ctx.options["bins"], flags)
    per_latent = dis.modularity_from_mi(hist_mi)
    informative = per_latent[ctx.informative].mean() if ctx.informative.any() else np.nan
    return dis.mig_from_mi(hist_mi, entropy), per_latent.mean(), informative, hist_mi, entropy


def _disentanglement(ctx, metrics, matrices):
    """MIG, modularity, SAP (subsampling intervals), DCI and probes (fold intervals), informative dims."""
    v, flags = ctx.scored_matrix()
    names = [f.name for f in ctx.scored]
    bins, seed = ctx.options["bins"], ctx.options["seed"]
    mig, mod_all, mod_inf, hist_mi, entropy = _histogram_scores(ctx, ctx.z, v, flags)
    sap_scores = dis.sap_scores(ctx.z, v, flags, ctx.clusters, seed) if v.shape[1] else np.zeros((ctx.n_latent, 0))
    sap = dis.sap_from_scores(sap_scores) if v.shape[1] else np.nan
    subs = {"mig": [], "modularity.all": [], "modularity.informative": [], "sap": [], "informative_dims": []}
    for rows in ctx.draws:
        sub = _histogram_scores(ctx, ctx.z[rows], v[rows], flags)
        subs["mig"].append(sub[0])
        subs["modularity.all"].append(sub[1])
        subs["modularity.informative"].append(sub[2])
        subs["sap"].append(dis.sap(ctx.z[rows], v[rows], flags, ctx.clusters[rows], seed) if v.shape[1] else np.nan)
        subs["informative_dims"].append(dis.informative_latents(ctx.z[rows], ctx.options["informative_mad"]).sum())
    hist = f"{bins} equal-width bins (np.histogram edges) for latents and continuous factors, plug-in MI"
    common = {**ctx.params, "factors": names}
    values = {"mig": (mig, f"MIG (Chen et al. 2018): {hist}, gap / H(factor)",
                      {**common, "bins": bins, "entropy_nats": dict(zip(names, entropy.tolist()))}),
              "modularity.all": (mod_all, f"modularity (Ridgeway & Mozer 2018), all latents; {hist}", common),
              "modularity.informative": (mod_inf, f"modularity over informative latents; {hist}",
                                         {**common, "n_informative": int(ctx.informative.sum())}),
              "sap": (sap, "SAP (Kumar et al. 2018): R^2 (continuous), held-out 1-latent LinearSVC accuracy "
                           "(discrete, standardised latent); mean top-two gap", common),
              "informative_dims": (float(ctx.informative.sum()),
                                   "latents with median absolute deviation (scale 1.0) above the threshold",
                                   {**ctx.params, "threshold": ctx.options["informative_mad"]})}
    for name, (value, estimator, params) in values.items():
        metrics[name] = entry(value, _jackknife(ctx, value, subs[name]), estimator=estimator, n=ctx.n,
                              params=params)
    matrices["mig_mi_nats"] = matrix(ctx.latent_names, names, hist_mi)
    matrices["sap_scores"] = matrix(ctx.latent_names, names, sap_scores)
    _dci_and_probes(ctx, v, flags, names, metrics, matrices)


def _dci_and_probes(ctx, v, flags, names, metrics, matrices):
    seed, n_folds = ctx.options["seed"], ctx.options["n_folds"]
    params = {"clusters": ctx.cluster_by, "n_folds": n_folds, "factors": names, **dis.HGB_OPTIONS}
    if v.shape[1]:
        result = dis.dci(ctx.z, v, flags, ctx.clusters, seed, n_folds)
        linear = dis.linear_probe_scores(ctx.z, v, flags, ctx.clusters, seed, n_folds)
    else:
        result = {"disentanglement": np.nan, "completeness": np.nan, "informativeness": np.nan,
                  "importance": np.zeros((ctx.n_latent, 0)), "scores": np.zeros((0, 0)),
                  "fold_disentanglement": [], "fold_completeness": []}
        linear = np.zeros((0, 0))
    fold_informativeness = dis.finite_mean(result["scores"], axis=0) if result["scores"].size else []
    gbt = "HistGradientBoosting gain importance on grouped folds"
    for key, folds, text in (("disentanglement", result["fold_disentanglement"], "importance-weighted 1 - H_K(row)"),
                             ("completeness", result["fold_completeness"], "importance-weighted 1 - H_L(column)"),
                             ("informativeness", fold_informativeness,
                              "mean held-out R^2 (accuracy for discrete factors)")):
        value = result[key]
        metrics[f"dci.{key}"] = entry(value, fold_interval(value, folds), estimator=f"DCI {text}; {gbt}",
                                      n=ctx.n, params=params)
    matrices["dci_importance"] = matrix(ctx.latent_names, names, result["importance"])
    for j, factor in enumerate(ctx.scored):
        score = "accuracy" if factor.discrete else "r2"
        for kind, scores, text in (("linear", linear, "Ridge(alpha=1) / LogisticRegression on standardised latents"),
                                   ("nonlinear", result["scores"], "the DCI gradient-boosted model")):
            value = float(np.nanmean(scores[j])) if np.isfinite(scores[j]).any() else np.nan
            metrics[f"probe.{kind}_{score}.{factor.name}"] = entry(
                value, fold_interval(value, scores[j]), estimator=f"held-out {score} on grouped folds: {text}",
                n=int(factor.known.sum()), params={"clusters": ctx.cluster_by, "n_folds": n_folds})


def _mutual_information(ctx, metrics, matrices, factor_groups):
    """KSG / Ross MI matrix, null, per-factor maxima, 'following' shares, study indicator, factor-factor MI.

    Subsample intervals recompute only candidate pairs: the ``top_candidates`` latents of each factor (for its
    maximum) and, per informative latent, the best factor of each group (for its group).
    """
    o = ctx.options
    k, seed, factors = o["ksg_k"], o["seed"], ctx.factors
    names = [f.name for f in factors]
    values, n_used = mi.latent_factor_mi(ctx.z, factors, k=k, seed=seed, rows=ctx.mi_rows, weights=ctx.weights)
    nulls = [mi.null_distribution(f, ctx.mi_rows, k=k, n_permutations=o["n_permutations"], seed=seed)
             for f in factors]
    finite = [x[np.isfinite(x)] for x in nulls]
    null_mean = np.array([x.mean() if x.size else 0.0 for x in finite])
    null_sd = np.array([x.std(ddof=1) if x.size > 1 else np.nan for x in finite])
    corrected = values - null_mean
    matrices["mi_ksg_nats"] = matrix(ctx.latent_names, names, values)
    matrices["mi_ksg_null"] = matrix(["mean", "sd"], names, np.vstack([null_mean, null_sd]).reshape(2, -1))
    pairs = np.zeros(corrected.shape, dtype=bool)
    for j in range(len(factors)):
        pairs[np.argsort(np.nan_to_num(corrected[:, j], nan=-np.inf))[::-1][:o["top_candidates"]], j] = True
    physical = np.array([not f.identity for f in factors], dtype=bool)
    pairs |= _group_candidates(ctx, corrected, physical)
    subsamples = []
    for rows in ctx.draws:
        sub_n = np.array([np.intersect1d(rows[f.known[rows]], ctx.mi_rows).size for f in factors])
        subsamples.append((_sub_mi(ctx, rows, pairs) - null_mean, sub_n))
    _maxima(ctx, metrics, corrected, pairs, subsamples, null_mean, null_sd, n_used)
    _following(ctx, metrics, corrected, physical, null_sd, n_used, subsamples)
    _study(ctx, matrices)
    matrices["mi_factors_nats"] = matrix(names, names, mi.factor_mi_matrix(factors, k=k, seed=seed))
    factor_groups.update({f.name: f.group for f in factors})


def _sub_mi(ctx, rows, pairs):
    """MI (nats) of the chosen pairs on a subsample (restricted to the MI rows)."""
    use = np.intersect1d(rows, ctx.mi_rows)
    return mi.latent_factor_mi(ctx.z, ctx.factors, k=ctx.options["ksg_k"], seed=ctx.options["seed"], rows=use,
                               weights=ctx.weights, pairs=pairs)[0]


def _group_candidates(ctx, corrected, physical):
    """(L, K) bool: per informative latent, the physical factor with the largest MI in each group."""
    pairs = np.zeros(corrected.shape, dtype=bool)
    for group in GROUPS:
        in_group = np.flatnonzero(physical & np.array([f.group == group for f in ctx.factors], dtype=bool))
        if in_group.size:
            best = in_group[np.argmax(np.nan_to_num(corrected[:, in_group], nan=-np.inf), axis=1)]
            pairs[np.flatnonzero(ctx.informative), best[ctx.informative]] = True
    return pairs


def _maxima(ctx, metrics, corrected, pairs, subsamples, null_mean, null_sd, n_used):
    o = ctx.options
    estimator = (f"max over latents of KSG (k={o['ksg_k']}; Ross 2014 for discrete factors) on ranks minus the "
                 "permutation-null mean, nats")
    for j, factor in enumerate(ctx.factors):
        col = corrected[:, j]
        if not np.isfinite(col).any():
            metrics[f"mi.max_nats.{factor.name}"] = entry(np.nan, estimator=estimator, n=n_used[j])
            continue
        value = float(np.nanmax(col))
        subs = [np.nanmax(sub[pairs[:, j], j]) if np.isfinite(sub[pairs[:, j], j]).any() else np.nan
                for sub, _ in subsamples]
        metrics[f"mi.max_nats.{factor.name}"] = entry(
            value, _jackknife(ctx, value, subs), estimator=estimator, n=n_used[j],
            params={**ctx.params, "k": o["ksg_k"], "argmax": ctx.latent_names[int(np.nanargmax(col))],
                    "null_mean": null_mean[j], "null_sd": null_sd[j], "n_permutations": o["n_permutations"],
                    "interval_candidates": f"top {o['top_candidates']} latents of the full sample",
                    "unique_per_star": o["unique_per_star"], "per_target_weighting": o["per_target_weighting"]})


def _assign(corrected, threshold, groups):
    """Group of each latent's largest significant MI (or 'none'); rows of ``corrected`` are latents."""
    significant = np.where(corrected > threshold, corrected, -np.inf)
    best = np.argmax(significant, axis=1)
    found = np.isfinite(significant[np.arange(corrected.shape[0]), best])
    return np.where(found, np.asarray(groups, dtype=object)[best], "none")


def _following(ctx, metrics, corrected, physical, null_sd, n_used, subsamples):
    """Share of informative latents whose strongest significant physical factor is in each group."""
    labels = GROUPS + ("none",)
    sigma = ctx.options["significance_sigma"]
    estimator = (f"share of informative latents whose largest null-corrected MI above {sigma:g} null sd "
                 "(non-identity factors) is with a factor of this group")
    latents, columns = np.flatnonzero(ctx.informative), np.flatnonzero(physical)
    if columns.size == 0 or latents.size == 0 or not np.isfinite(null_sd[columns]).all():
        for label in labels:
            metrics[f"following.{label}"] = entry(np.nan, estimator=estimator, n=ctx.n, params={
                "skipped": "needs an informative latent, a physical factor and n_permutations >= 2"})
        return
    groups = [ctx.factors[j].group for j in columns]
    threshold = sigma * null_sd[columns]
    assigned = _assign(np.nan_to_num(corrected[np.ix_(latents, columns)], nan=-np.inf), threshold, groups)
    subs = {label: [] for label in labels}
    for sub, sub_n in subsamples:
        scale = np.sqrt(n_used[columns] / np.maximum(sub_n[columns], 1))      # null sd grows as 1 / sqrt(N)
        sub_assigned = _assign(np.nan_to_num(sub[np.ix_(latents, columns)], nan=-np.inf), threshold * scale, groups)
        for label in labels:
            subs[label].append(np.mean(sub_assigned == label))
    for label in labels:
        share = float(np.mean(assigned == label))
        metrics[f"following.{label}"] = entry(
            share, _jackknife(ctx, share, subs[label]), estimator=estimator, n=ctx.n,
            params={**ctx.params, "n_informative": int(latents.size), "significance_sigma": sigma,
                    "interval_candidates": "best factor of each group per informative latent"})


def _study(ctx, matrices):
    """The study's indicator (as released) per bin count: matrices latents x continuous physical factors."""
    rows = ctx.mi_rows
    cut = "not applied (no median flux given)"
    if ctx.median_flux is not None:
        rows = rows[~(ctx.median_flux[rows] < ctx.options["min_median_flux"])]
        cut = f"median flux < {ctx.options['min_median_flux']:g} dropped"
    factors = [f for f in ctx.factors if not f.discrete]
    bins = tuple(ctx.options["study_bins"])
    indicator = np.full((len(bins), ctx.n_latent, len(factors)), np.nan)
    plugin = np.full_like(indicator, np.nan)
    for j, factor in enumerate(factors):
        ind, raw, _ = mi.study_indicator(ctx.z[rows], factor.values[rows], bins)
        indicator[:, :, j], plugin[:, :, j] = ind, raw
    names = [f.name for f in factors]
    for b, nbins in enumerate(bins):
        matrices[f"mi_study_indicator.b{nbins}"] = matrix(ctx.latent_names, names, indicator[b])
        matrices[f"mi_study_plugin_nats.b{nbins}"] = matrix(ctx.latent_names, names, plugin[b])
    ctx.study_cut = cut


def _finite_median(values):
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else np.nan


def _repeat(ctx, metrics, matrices, reference):
    estimator = "median over informative latents of within-target std / std of target means"
    targets = (np.asarray(ctx.table["target_id"]).astype(str)[ctx.rows] if "target_id" in colnames(ctx.table)
               else None)
    use = ctx.informative if ctx.informative.any() else None
    if targets is not None and np.unique(targets).size >= 2:
        within, between = repeat.dispersion(ctx.z, targets)
        ratios = repeat.ratio(within, between)
        value = repeat.median_ratio(ctx.z, targets, use)
        subs = [repeat.median_ratio(ctx.z[rows], targets[rows], use) for rows in ctx.draws]
        interval = _jackknife(ctx, value, subs)
        params = {**ctx.params, "n_informative": int(ctx.informative.sum())}
    elif reference is not None and ctx.n >= 2:
        ref_z, ref_table = reference
        ref_targets = np.asarray(ref_table["target_id"]).astype(str)
        ref_ok = np.all(np.isfinite(ref_z), axis=1)
        between = repeat.dispersion(np.asarray(ref_z, np.float64)[ref_ok], ref_targets[ref_ok])[1]
        within, ratios = repeat.series_ratio(ctx.z, between)
        chosen = ratios[use] if use is not None else ratios
        value = _finite_median(chosen)
        subs = [_finite_median(repeat.series_ratio(ctx.z[rows], between)[1][use if use is not None else slice(None)])
                for rows in ctx.draws]
        interval = _jackknife(ctx, value, subs)
        estimator = "median over informative latents of within-series std / reference between-target std"
        params = {**ctx.params, "reference_targets": int(np.unique(ref_targets[ref_ok]).size)}
    else:
        metrics["repeat.ratio_median"] = entry(np.nan, estimator=estimator, n=ctx.n, params={
            "skipped": "one target and no reference population" if targets is not None else "no target_id"})
        return
    metrics["repeat.ratio_median"] = entry(value, interval, estimator=estimator, n=ctx.n, params=params)
    matrices["repeat_dispersion"] = matrix(ctx.latent_names, ["within", "between", "ratio"],
                                           np.column_stack([within, between, ratios]))


def _nuisance(ctx, metrics, matrices):
    pairs = repeat.paired_design(ctx.table, ctx.rows)
    if not pairs:
        return
    spread = ctx.z.std(axis=0, ddof=1)
    use = ctx.informative if ctx.informative.any() else np.ones(ctx.n_latent, bool)
    columns, shifts = [], []
    for factor in dict.fromkeys(p[0] for p in pairs):
        mine = [p for p in pairs if p[0] == factor]
        base = np.concatenate([p[2] for p in mine])
        varied = np.concatenate([p[3] for p in mine])
        for _, variant, b, v in mine:
            columns.append(f"{factor}/variant{variant}")
            shifts.append(repeat.pair_shifts(ctx.z, b, v, spread))
        value = float(np.max(repeat.pair_shifts(ctx.z, base, varied, spread)[use]))
        subs = []
        for rows in ctx.draws:
            keep = np.isin(base, rows) & np.isin(varied, rows)
            subs.append(np.max(repeat.pair_shifts(ctx.z, base[keep], varied[keep], spread)[use]) if keep.any()
                        else np.nan)
        metrics[f"nuisance.{factor}.shift_max"] = entry(
            value, _jackknife(ctx, value, subs),
            estimator="max over informative latents of the median |z(variant) - z(base)| / population std",
            n=int(varied.size), params={**ctx.params, "variants": [int(p[1]) for p in mine]})
    matrices["nuisance_shift"] = matrix(ctx.latent_names, columns, np.column_stack(shifts))


def _telluric(ctx, metrics, telluric):
    """Telluric-vs-stellar metrics; null entries with the reason when no reconstructions are given."""
    if telluric is None:
        for name in TELLURIC_METRICS:
            metrics[name] = entry(np.nan, estimator="see docs/metrics.md", n=0,
                                  params={"skipped": "no reconstructions given"})
        return
    t = dict(telluric)
    index = np.asarray(t["spectrum_index"], dtype=np.int64)
    position = {int(s): i for i, s in enumerate(np.asarray(ctx.table["spectrum_index"]))} \
        if "spectrum_index" in colnames(ctx.table) else {i: i for i in range(len(ctx.table))}
    table_rows = np.array([position[int(s)] for s in index])
    clusters_all, by = cluster_labels(ctx.table)
    stellar, expected, note = t.get("stellar"), t.get("expected"), None
    if stellar is None and expected is None:
        step = np.median(np.diff(t["wavelength_aa"])) if t.get("wavelength_aa") is not None else 0.01
        expected, stellar, qualifies, note = estimate_expected(
            t.get("flux", t["data"]), t["telluric"], np.asarray(ctx.table["target_id"]).astype(str)[table_rows],
            np.asarray(ctx.table["berv_kms"], np.float64)[table_rows], t.get("mask"),
            block_px=max(int(round(CONTINUUM_BLOCK_AA / step)), 8))
        if not qualifies.any():
            expected = stellar = None
            note += "; no target qualifies: slopes and the stellar and continuum classes skipped"
    out = telluric_rejection(t["data"], t["reconstruction"], t["sigma"], t["telluric"], stellar=stellar,
                             expected=expected, mask=t.get("mask"), clusters=clusters_all[table_rows],
                             n_subsamples=ctx.options["n_subsamples"], fraction=ctx.options["subsample_fraction"],
                             seed=ctx.options["seed"], notes=note)
    for entry_ in out.values():
        entry_["params"]["clusters"] = by
    metrics.update(out)


def evaluate(latents, table, *, config=None, telluric=None, model="", dataset_info=None, reference=None,
             median_flux=None):
    """All metrics of ``latents`` (n_spectra, n_latent; row i = spectrum_index i) against ``table``.

    ``telluric``: optional mapping for the telluric-vs-stellar metric with ``spectrum_index`` (n_sub,), ``data``,
    ``reconstruction``, ``sigma``, ``telluric`` and optionally ``stellar``, ``expected``, ``mask``, ``flux``
    (un-offset flux for real sets), ``wavelength_aa`` (n_channels,), as ``analysis.metrics.telluric`` describes.
    ``reference``: (latents, table) of a simulated population for a single-star series' repeat ratio.
    ``median_flux``: (n_spectra,) median flux per spectrum for the study's < 50 cut.
    ``dataset_info``: {"name", "fingerprint", "source"} (``n`` filled in). Returns the JSON-safe document.
    """
    options = metrics_config(config)
    ctx = _Context(latents, table, options, median_flux)
    metrics, matrices, factor_groups = {}, {}, {}
    _disentanglement(ctx, metrics, matrices)
    _mutual_information(ctx, metrics, matrices, factor_groups)
    _repeat(ctx, metrics, matrices, reference)
    _nuisance(ctx, metrics, matrices)
    _telluric(ctx, metrics, telluric)
    dataset = {"name": None, "fingerprint": None, "source": None, **(dataset_info or {}), "n": ctx.n}
    info = {"n_table_rows": len(table), "n_analysed": ctx.n, "n_latent": ctx.n_latent,
            "informative_latents": [n for n, i in zip(ctx.latent_names, ctx.informative) if i],
            "skipped_factors": ctx.skipped, "clusters": ctx.cluster_by, "study_median_flux_cut": ctx.study_cut,
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}}
    return json_safe({"schema": SCHEMA, "model": model, "dataset": dataset, "factors": factor_groups,
                      "metrics": dict(sorted(metrics.items())), "matrices": matrices, "info": info})


def _number(x):
    return "-" if x is None else f"{x:.3g}"


def format_table(metrics_dict):
    """Compact text table of a metrics document: name, value, 95 % interval, n."""
    rows = [("metric", "value", "95% interval", "n")]
    for name, e in metrics_dict["metrics"].items():
        interval = "" if e.get("ci_low") is None else f"[{_number(e['ci_low'])}, {_number(e['ci_high'])}]"
        rows.append((name, _number(e.get("value")), interval, str(e.get("n", ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = f"{metrics_dict.get('model', '')} on {(metrics_dict.get('dataset') or {}).get('name')}"
    return "\n".join([head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows])
