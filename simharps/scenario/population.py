"""Population sampling: a scenario -> the truth table, one row per spectrum.

Rows
----
* random design: ``n_targets`` targets x ``epochs_per_target`` epochs, target-major
  (row = target_index * epochs + epoch).
* factorial design: the grid cells of the per-target factors x ``n_targets`` targets each, and for
  every target the cells of the per-epoch factors x ``epochs_per_target`` epochs each, so each
  star is observed at every level of the condition factors (repeat observations under new
  conditions) and the factors vary independently of each other.
* paired design: each drawn row (variant 0) is followed by its variants 1..k, copies that differ in
  the paired factor only (``berv_kms`` is recomputed when the factor is mjd_utc, exptime_s, ra_deg
  or dec_deg, being a function of them; nothing else is).

Determinism
-----------
All randomness comes from ``numpy.random.SeedSequence(seed, spawn_key=...)`` streams keyed by
indices, never by position in a batch:

    per target t:            spawn_key = (1, t)      -> uniforms for the per-target parameters
    per observation (t, e):  spawn_key = (2, t, e)   -> uniforms for the per-epoch parameters, then
                                                        the candidate times of the visibility search
    per spectrum:            spawn_key = (3, t, e, variant)  (``spectrum_seed``; paired designs with
                                                        same_noise drop the variant)

Each parameter owns fixed slots of those uniforms (``parameters.SLOT``), so a target's draws do not
change when n_targets or epochs grow, parameters are added to the scenario, or the table is built
in chunks (``sample_population(scenario, targets=range(a, b))``) by any number of workers.

Derived columns: mjd_utc (exposure start) from night-time visibility at the site (see
``simharps.scenario.visibility``), airmass (unless drawn), hour_angle_h, parallactic_angle_deg and
sun_altitude_deg at mid-exposure, berv_kms from ``simharps.kinematics.barycentric_correction``
(classical DRS convention, mid-exposure), and fibre_era resolved from the date where it is 'auto'.

Output: an ``astropy.table.Table`` (plain columns with units attached; strings as str), columns
target_id, target_index, epoch, variant, design_group, the parameters (``docs/contracts.md``
names), mjd_utc, berv_kms, hour_angle_h, parallactic_angle_deg, sun_altitude_deg, instrument, site;
``meta`` holds scenario name, seed and sha256.
"""

import itertools

import numpy as np
from astropy.table import Table

from simharps.kinematics import barycentric_correction
from simharps.parameters import EPOCH, TARGET
from simharps.scenario.distributions import describe_range
from simharps.scenario.eras import ERA_WINDOWS_MJD, FIBRE_UPGRADE_MJD
from simharps.scenario.errors import ScenarioError
from simharps.scenario.parameters import DERIVED, N_SLOTS, PARAMETERS, SLOT, SLOTS_PER_PARAMETER
from simharps.scenario.visibility import SiteEphemeris, draw_visible_times

STREAM_TARGET, STREAM_EPOCH, STREAM_SPECTRUM = 1, 2, 3


def _generator(seed, *key):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _evaluate(plan, names, uniforms, columns):
    """Fill ``columns`` with the samplers of ``names``, relations after the parameters they need."""
    pending = [name for name in names if name in plan.samplers]
    while pending:
        ready = [name for name in pending if all(need in columns for need in plan.samplers[name].needs)]
        if not ready:
            raise AssertionError(f"unresolvable dependencies among {pending}")
        for name in ready:
            slot = SLOT[name]
            columns[name] = plan.samplers[name].ppf(uniforms[:, slot:slot + SLOTS_PER_PARAMETER], columns)
            pending.remove(name)


def _factor_cells(plan, level):
    names = [name for name in plan.factors if plan.levels[name] == level]
    return names, list(itertools.product(*[plan.factors[name] for name in names]))


def sample_population(scenario, targets=None):
    """The population (truth) table of a simulated ``scenario``: an astropy Table, one row per spectrum.

    ``targets``: optional iterable of target indices (0 .. n_targets_total - 1) to sample only those
    targets' rows (same values as in the full table), for chunked or parallel sampling.
    Raises ScenarioError when a target cannot be observed as asked (naming it and the fix).
    """
    if scenario.kind != "simulated":
        scenario.fail(("source",), "a real-data scenario has no population to sample; ingest its paths instead")
    plan, model = scenario.plan, scenario.model
    population, design = model.population, model.design
    target_factor_names, target_cells = _factor_cells(plan, TARGET)
    epoch_factor_names, epoch_cells = _factor_cells(plan, EPOCH)
    n_targets_total = len(target_cells) * population.n_targets
    n_epochs = len(epoch_cells) * population.epochs_per_target
    target_index = np.arange(n_targets_total) if targets is None else np.asarray(list(targets), dtype=int)
    if target_index.size and (target_index.min() < 0 or target_index.max() >= n_targets_total):
        raise ScenarioError(f"targets must lie in 0..{n_targets_total - 1}", path=scenario.path)

    # per-target parameters
    seed = scenario.seed
    target_uniforms = np.stack([_generator(seed, STREAM_TARGET, int(t)).random(N_SLOTS) for t in target_index]) \
        if target_index.size else np.zeros((0, N_SLOTS))
    columns = {}
    cell = target_index // population.n_targets
    for k, name in enumerate(target_factor_names):
        columns[name] = np.asarray([target_cells[c][k] for c in cell], dtype=_dtype(name))
    _evaluate(plan, [n for n in PARAMETERS if plan.levels.get(n) == TARGET], target_uniforms, columns)

    # rows: every target x every epoch
    row_target = np.repeat(target_index, n_epochs)
    row_epoch = np.tile(np.arange(n_epochs), target_index.size)
    columns = {name: np.repeat(values, n_epochs) for name, values in columns.items()}
    rngs = [_generator(seed, STREAM_EPOCH, int(t), int(e)) for t, e in zip(row_target, row_epoch)]
    epoch_uniforms = np.stack([rng.random(N_SLOTS) for rng in rngs]) if rngs else np.zeros((0, N_SLOTS))
    epoch_cell = row_epoch // population.epochs_per_target
    for k, name in enumerate(epoch_factor_names):
        columns[name] = np.asarray([epoch_cells[c][k] for c in epoch_cell], dtype=_dtype(name))
    _evaluate(plan, [n for n in PARAMETERS if plan.levels.get(n) == EPOCH], epoch_uniforms, columns)
    columns.update(_observe(scenario, columns, row_target, rngs, epoch_uniforms))

    target_cell = row_target // population.n_targets
    columns["design_group"] = target_cell * len(epoch_cells) + epoch_cell if design.kind == "factorial" \
        else row_target * n_epochs + row_epoch
    columns["target_index"], columns["epoch"] = row_target, row_epoch
    columns["variant"] = np.zeros(row_target.size, dtype=int)
    if design.kind == "paired":
        columns = _paired_variants(scenario, columns)
    _check_values(scenario, columns)
    if design.kind == "paired":
        _paired_berv(scenario, columns)
    return _table(scenario, columns)


def _dtype(name):
    return object if PARAMETERS[name].is_string else float


def _observe(scenario, columns, row_target, rngs, epoch_uniforms):
    """Dates, geometry, airmass (if derived), fibre era and BERV of every row."""
    plan, observing = scenario.plan, scenario.model.observing
    start, stop = plan.dates_mjd
    n = row_target.size
    out = {}
    if n == 0:
        return {name: np.zeros(0) for name in ("mjd_utc", "berv_kms", "hour_angle_h", "parallactic_angle_deg",
                                                "sun_altitude_deg", "airmass")}
    windows = np.tile([start, stop], (n, 1)).astype(float)
    for era, (era_start, era_stop) in ERA_WINDOWS_MJD.items():
        rows = columns["fibre_era"] == era
        windows[rows] = [max(start, era_start), min(stop, era_stop)]
    ra, dec = np.asarray(columns["ra_deg"], float), np.asarray(columns["dec_deg"], float)
    ephemeris = SiteEphemeris(scenario.site, start, stop)
    airmass = sign = None
    if plan.airmass_given:
        airmass = np.asarray(columns["airmass"], float)
        reachable = ephemeris.minimum_airmass(dec) <= airmass
        if not reachable.all():
            i = int(np.flatnonzero(~reachable)[0])
            scenario.fail(plan.locations["airmass"], f"target {_target_id(row_target[i])} at dec {dec[i]:+.2f} deg "
                          f"never gets down to airmass {airmass[i]:.3f} at {scenario.site} (its best is "
                          f"{ephemeris.minimum_airmass(dec[i]):.3f}); raise the airmass values or narrow dec_deg")
        u_sign = epoch_uniforms[:, SLOT["airmass"] + 1]
        sign = np.where(u_sign < 0.5, -1.0, 1.0)
    mjd_mid, found = draw_visible_times(ephemeris, ra, dec, windows, rngs, plan.sun_altitude_max_deg,
                                        observing.max_airmass, airmass=airmass, hour_angle_sign=sign)
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        scenario.fail(("observing",), f"found no night-time (Sun below {plan.sun_altitude_max_deg:g} deg) moment "
                      f"with target {_target_id(row_target[i])} (ra {ra[i]:.2f}, dec {dec[i]:+.2f} deg) at airmass "
                      f"{'%.3f' % airmass[i] if airmass is not None else '<= %g' % observing.max_airmass} within "
                      f"MJD {windows[i, 0]:.1f}-{windows[i, 1]:.1f}; widen observing.dates")
    exptime = np.asarray(columns["exptime_s"], float)
    out["mjd_utc"] = mjd_mid - 0.5 * exptime / 86400.0
    geometry = ephemeris.geometry(ra, dec, mjd_mid)
    for name in ("hour_angle_h", "parallactic_angle_deg", "sun_altitude_deg"):
        out[name] = geometry[name]
    if not plan.airmass_given:
        out["airmass"] = geometry["airmass"]
    era = np.asarray(columns["fibre_era"], dtype=object)
    out["fibre_era"] = np.where(era == "auto", np.where(out["mjd_utc"] < FIBRE_UPGRADE_MJD, "pre2015", "post2015"),
                                era).astype(object)
    out["berv_kms"] = barycentric_correction(ra, dec, out["mjd_utc"], exptime, scenario.site)
    return out


def _paired_variants(scenario, columns):
    plan, design = scenario.plan, scenario.model.design
    name = design.factor
    offsets = plan.paired_values if plan.paired_values is not None else plan.paired_deltas
    k = 1 + len(offsets)
    out = {key: np.repeat(values, k) for key, values in columns.items()}
    variant = np.tile(np.arange(k), columns["variant"].size)
    out["variant"] = variant
    base = np.asarray(out[name])
    for index, value in enumerate(offsets, start=1):
        rows = variant == index
        if plan.paired_values is not None:
            base[rows] = value
        else:
            base[rows] = base[rows] + value
    out[name] = base
    return out


def _paired_berv(scenario, columns):
    """BERV of the variants again where the paired factor is one of its inputs (values already range-checked)."""
    if scenario.model.design.factor in ("mjd_utc", "exptime_s", "ra_deg", "dec_deg"):
        rows = columns["variant"] > 0
        columns["berv_kms"][rows] = barycentric_correction(columns["ra_deg"][rows], columns["dec_deg"][rows],
                                                           columns["mjd_utc"][rows], columns["exptime_s"][rows],
                                                           scenario.site)


def _check_values(scenario, columns):
    """Every drawn value within its valid (and built-in model) range; ScenarioError names row and fix."""
    for name, spec in PARAMETERS.items():
        if name not in columns or spec.is_string:
            continue
        values = np.asarray(columns[name], float)
        ranges = [spec.valid]
        if spec.builtin is not None and scenario.model.stellar_model == "builtin":
            ranges.append(spec.builtin)
        for lo, hi in ranges:
            bad = ~np.isfinite(values) | (values < lo) | (values > hi)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                location = scenario.plan.locations.get(name, ("design",))
                if scenario.model.design.kind == "paired" and name == scenario.model.design.factor:
                    location = ("design",)
                target = _target_id(columns["target_index"][i])
                scenario.fail(location, f"{name} = {values[i]:g} drawn for target {target} epoch {columns['epoch'][i]} "
                              f"is outside the range {describe_range(lo, hi, spec.unit_text)}; bound the distribution "
                              "(truncated) or the relation inputs so it stays inside")


def _target_id(index):
    return f"T{int(index):05d}"


def _table(scenario, columns):
    table = Table(meta={"scenario": scenario.name, "seed": scenario.seed, "scenario_sha256": scenario.sha256})
    table["target_id"] = np.asarray([_target_id(t) for t in columns["target_index"]], dtype=str)
    for name in ("target_index", "epoch", "variant", "design_group"):
        table[name] = np.asarray(columns[name], dtype=np.int64)
    for name, spec in PARAMETERS.items():
        if name not in columns:
            continue
        if spec.is_string:
            table[name] = np.asarray(columns[name], dtype=str)
        else:
            table[name] = np.asarray(columns[name], dtype=float)
            table[name].unit = spec.unit
        table[name].description = spec.description
    for name, (unit, description) in DERIVED.items():
        table[name] = np.asarray(columns[name], dtype=float)
        table[name].unit = unit
        table[name].description = description
    table["instrument"] = np.full(len(table), scenario.model.instrument.name)
    table["site"] = np.full(len(table), scenario.site)
    return table


def spectrum_seed(scenario, row):
    """SeedSequence for the forward model's random draws of population ``row`` (a Table row or mapping).

    Keyed by (target_index, epoch, variant), so a spectrum's noise never depends on batch or worker;
    in a paired design with ``same_noise: true`` the variants of one base row share it.
    """
    key = (STREAM_SPECTRUM, int(row["target_index"]), int(row["epoch"]))
    design = scenario.model.design
    if not (design.kind == "paired" and design.same_noise):
        key += (int(row["variant"]),)
    return np.random.SeedSequence(scenario.seed, spawn_key=key)

