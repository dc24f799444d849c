"""Deterministic, resumable, parallel generation of a simulated dataset.

``generate(rows, seed, out_dir, simulate_batch)`` splits the population ``rows`` into chunks of ``chunk_size``
spectra, calls ``simulate_batch(chunk_rows, seeds)`` once per chunk (in this process, in a pool of spawned
processes, or on a Dask cluster), applies the ``channels`` selection, encodes the chunk and writes it atomically
(``simharps.dataset.store``). Then it assembles the table and the manifest.

Determinism: spectrum ``i`` gets ``numpy.random.SeedSequence(entropy=seed, spawn_key=key)`` with ``key`` the row's
``seed_key`` (a list of integers naming the spectrum, e.g. (stream, target, epoch) from ``simharps.scenario``) or
``(i,)`` when the row has none, so its values depend only on (seed, its key); a chunk file's bytes depend only on its spectra; the table and manifest are built from the
chunks in index order. Hence 1 worker, N processes, a Dask cluster and an interrupted-then-resumed run all give
byte-identical chunks, table and manifest (``run.json`` alone records how the run went). Byte identity assumes the
same software stack (numpy, zlib: both recorded in the manifest).

Resuming: re-running the same call skips every chunk already on disk (a chunk file exists only once complete)
and computes the rest; a different population, seed, chunk size, channel selection, dtypes or simulator in the
same directory is refused unless ``overwrite=True``.

Failures: a spectrum the simulator reports in ``batch.failed``, or one whose batch raised an ``Exception`` (the
chunk is then re-simulated one spectrum at a time to isolate it), is stored as NaN, flagged in the table's
``failed`` column and listed with its reason in the manifest; the run goes on. ``BaseException`` (Ctrl-C, a
killed worker) stops the run; the chunks written so far stay valid for the resume.

Processes: the local workers (``WorkerPool``) leave Ctrl-C to this process, are terminated at once when the run
stops, and exit by themselves when this process dies, even by ``kill -9``.

The ``simulate_batch`` contract::

    batch = simulate_batch(rows, seeds)    # rows: list of n parameter mappings; seeds: list of n SeedSequence
    batch.wavelength_air_aa  (n_channels,) float64        same grid for every call
    batch.flux, batch.error  (n, n_channels) float32
    batch.components         dict name -> (n, n_channels) float32 (may be empty)
    batch.truth              list of n dicts (inputs plus derived quantities)
    batch.failed             list of (index_in_batch, message)

It must be picklable for ``workers > 1`` or a scheduler (a module-level function, or ``functools.partial`` of one).

Example
-------
>>> from functools import partial
>>> from simharps.dataset import generate
>>> from simharps.forward import simulate_batch
>>> rows = [dict(teff_k=5770.0, logg_cgs=4.44, vmag=8.0), dict(teff_k=4800.0, logg_cgs=4.6, vmag=9.0)]
>>> ds = generate(rows, 42, "out/demo", partial(simulate_batch, components=True, window=(5000.0, 5050.0)),
...               workers=2)                                   # doctest: +SKIP
"""

import hashlib
import json
import multiprocessing
import sys
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from simharps.dataset.channels import Channels
from simharps.dataset.codec import Encoding
from simharps.dataset.jsonio import canonical_json, package_versions, write_json
from simharps.dataset.layout import RUN_FILE, encode_chunk
from simharps.dataset.reader import Dataset
from simharps.dataset.writer import DEFAULT_CHUNK_SIZE, DatasetWriter
from simharps.errors import ParameterError, SimharpsError
from simharps.workers import WorkerPool

SCHEDULER_TIMEOUT_S = 30
"""How long connecting to a Dask scheduler may take before the run is refused (seconds)."""


@dataclass
class ChunkTask:
    """Everything a worker needs to produce one chunk file (picklable)."""

    chunk: int
    start: int
    rows: list
    seed: int
    simulate_batch: object
    channels: Channels
    encoding: Encoding
    fingerprint: str


@dataclass
class ChunkResult:
    """A worker's answer: the chunk file's bytes, its (post-selection) grid, and how many spectra failed."""

    chunk: int
    data: bytes
    wavelength_air_aa: np.ndarray | None
    n_spectra: int
    n_failed: int


def spectrum_seeds(seed, start, rows):
    """SeedSequences of the spectra ``start``, ``start + 1``, ... holding ``rows``: ``SeedSequence(entropy=seed,
    spawn_key=row["seed_key"])``, or ``spawn_key=(i,)`` for a row without a ``seed_key``."""
    return [np.random.SeedSequence(entropy=seed, spawn_key=tuple(int(k) for k in row.get("seed_key", (start + j,))))
            for j, row in enumerate(rows)]


def _describe(error):
    return f"{type(error).__name__}: {error}"


def _unpack(batch, n):
    """Validated (wavelength, arrays, truth, failed) of a simulate_batch result for n spectra."""
    wave = np.asarray(batch.wavelength_air_aa, dtype=np.float64)
    if wave.ndim != 1 or wave.size == 0:
        raise SimharpsError(f"simulate_batch returned wavelength_air_aa of shape {wave.shape}; need (n_channels,)")
    arrays = {"flux": batch.flux, "error": batch.error, **dict(batch.components or {})}
    out = {}
    for name, values in arrays.items():
        values = np.array(values, dtype=np.float32)
        if values.shape != (n, wave.size):
            raise SimharpsError(f"simulate_batch returned {name} of shape {values.shape}; need ({n}, {wave.size})")
        out[name] = values
    truth = list(batch.truth)
    if len(truth) != n:
        raise SimharpsError(f"simulate_batch returned {len(truth)} truth rows for {n} spectra")
    failed = []
    for index, message in batch.failed:
        if not 0 <= int(index) < n:
            raise SimharpsError(f"simulate_batch reported failed index {index} outside 0..{n - 1}")
        failed.append((int(index), str(message)))
    return wave, out, truth, failed


def _simulate_chunk(task):
    """(wavelength or None, arrays, truth rows, [(index in chunk, reason)]) with per-spectrum isolation."""
    n = len(task.rows)
    try:
        batch = task.simulate_batch(task.rows, spectrum_seeds(task.seed, task.start, task.rows))
    except Exception as error:  # noqa: BLE001 - any simulator error is a bad spectrum, isolated below
        if n == 1:
            return None, {}, [None], [(0, _describe(error))]
    else:
        return _unpack(batch, n)
    parts = [_simulate_chunk(ChunkTask(task.chunk, task.start + j, [row], task.seed, task.simulate_batch,
                                       task.channels, task.encoding, task.fingerprint))
             for j, row in enumerate(task.rows)]
    grids = [part[0] for part in parts if part[0] is not None]
    if not grids:
        return None, {}, [part[2][0] for part in parts], [(j, part[3][0][1]) for j, part in enumerate(parts)]
    wave = grids[0]
    if any(grid.shape != wave.shape or not np.array_equal(grid, wave) for grid in grids):
        raise SimharpsError("simulate_batch returned different wavelength grids for spectra of one chunk")
    names = sorted({name for part in parts for name in part[1]})
    arrays = {name: np.full((n, wave.size), np.nan, dtype=np.float32) for name in names}
    truth, failed = [], []
    for j, (_, part_arrays, part_truth, part_failed) in enumerate(parts):
        for name, values in part_arrays.items():
            arrays[name][j] = values[0]
        truth.append(part_truth[0])
        failed.extend((j, reason) for _, reason in part_failed)
    return wave, arrays, truth, failed


def compute_chunk(task):
    """Simulate, select channels and encode one chunk (the function workers run)."""
    wave, arrays, truth, failed = _simulate_chunk(task)
    for index, _ in failed:
        for values in arrays.values():
            values[index] = np.nan
    rows = []
    for row, extra in zip(task.rows, truth):
        rows.append({**row, **extra} if isinstance(extra, dict) else dict(row))
    if wave is not None:
        wave, arrays = task.channels.apply(wave, arrays)
    data = encode_chunk(fingerprint=task.fingerprint, chunk=task.chunk, start=task.start, wavelength_air_aa=wave,
                        arrays=arrays, rows=rows, failed=[(task.start + index, reason) for index, reason in failed],
                        encoding=task.encoding)
    return ChunkResult(task.chunk, data, wave, len(task.rows), len(failed))


def simulator_identity(function):
    """Stable text naming a simulate_batch callable: module.qualname (of its class for an instance), plus the
    arguments of a ``functools.partial``. Part of the fingerprint that decides whether a run may be resumed."""
    if isinstance(function, partial):
        args = canonical_json([list(function.args), dict(sorted(function.keywords.items()))])
        return f"{simulator_identity(function.func)}{args}"
    named = function if hasattr(function, "__qualname__") else type(function)
    return f"{named.__module__}.{named.__qualname__}"


def _progress_bar(total, initial, label, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="spectrum", desc=label, dynamic_ncols=True, smoothing=0.1,
                disable=not (enabled and sys.stderr.isatty()))


def check_workers(workers):
    """``workers`` as an int; ParameterError unless it is an integer >= 1."""
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    return int(workers)


def check_scheduler(scheduler):
    """ParameterError unless ``scheduler`` is None, "local", an address "tcp://host:port" (any protocol, or none)
    or a distributed.Client (checked when connecting)."""
    if scheduler is None or scheduler == "local" or not isinstance(scheduler, str):
        return
    host, colon, port = scheduler.partition("://")[2 if "://" in scheduler else 0].rpartition(":")
    if not (colon and host and port.isdigit()):
        raise ParameterError(f"scheduler must be 'local' (a Dask LocalCluster of --workers processes) or the address "
                             f"of a running Dask scheduler like 'tcp://host:8786', got {scheduler!r}")


def _run_local(tasks, workers, handle):
    if workers == 1:
        for task in tasks:
            handle(compute_chunk(task))
        return
    with WorkerPool(workers, multiprocessing.get_context("spawn")) as pool:
        queue = iter(tasks)
        pending = set()
        while True:
            while len(pending) < 2 * workers:
                task = next(queue, None)
                if task is None:
                    break
                pending.add(pool.submit(compute_chunk, task))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                handle(future.result())


def _dask_client(scheduler, workers):
    """(client, things to close) for a scheduler address, "local", or a distributed.Client."""
    try:
        import distributed
    except ImportError as error:
        raise SimharpsError("a Dask scheduler needs dask.distributed: pip install 'dask[distributed]'") from error
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if scheduler == "local":
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, str):
        try:
            client = distributed.Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except OSError as error:
            raise SimharpsError(f"cannot reach the Dask scheduler at {scheduler!r} within {SCHEDULER_TIMEOUT_S} s "
                                f"({error}); start it first (dask scheduler) or use --scheduler local") from error
        return client, [client]
    raise ParameterError(f"scheduler must be None, 'local', an address like 'tcp://host:8786' or a "
                         f"distributed.Client, got {type(scheduler).__name__}")


def _run_dask(tasks, scheduler, workers, handle):
    import distributed

    client, owned = _dask_client(scheduler, workers)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        queue = iter(tasks)
        initial = []
        for task in queue:
            initial.append(client.submit(compute_chunk, task, pure=False,
                                         key=f"simharps-chunk-{task.fingerprint[:12]}-{task.chunk}"))
            if len(initial) >= 2 * n_workers:
                break
        futures = distributed.as_completed(initial)
        for future in futures:
            handle(future.result())
            future.release()
            task = next(queue, None)
            if task is not None:
                futures.add(client.submit(compute_chunk, task, pure=False,
                                          key=f"simharps-chunk-{task.fingerprint[:12]}-{task.chunk}"))
    finally:
        for thing in owned:
            thing.close()


def generate(rows, seed, out_dir, simulate_batch, *, chunk_size=DEFAULT_CHUNK_SIZE, workers=1, scheduler=None,
             channels=None, dtypes=None, progress=True, scenario_text=None, manifest_extra=None, overwrite=False):
    """Simulate one spectrum per row into the dataset directory ``out_dir``; returns the opened ``Dataset``.

    rows            population: sequence of parameter mappings (one per spectrum; JSON-able values)
    seed            scenario seed (int >= 0); spectrum i uses SeedSequence(entropy=seed, spawn_key=row["seed_key"]),
                    or spawn_key=(i,) when the row has no ``seed_key``
    out_dir         dataset directory (created; resumed when it holds this same run unfinished)
    simulate_batch  the batch forward model (see the module docstring)
    chunk_size      spectra per chunk file and per simulate_batch call
    workers         processes (1: in this process); with scheduler="local" the LocalCluster's worker count
    scheduler       None (local processes), "local" (a dask LocalCluster), "tcp://host:port" (a running Dask
                    scheduler) or a distributed.Client
    channels        what to store: None (every channel simulate_batch returns), a ``Channels`` or its dict
                    (window start_aa/stop_aa, factor or n_channels, method "bin"/"decimate")
    dtypes          stored dtype per array name ("float16" default, "float32" lossless)
    progress        tqdm bar with rate and ETA on stderr when it is a terminal
    scenario_text   the scenario file's text (stored with its sha256)
    manifest_extra  extra manifest sections kept verbatim (``analysis``, ``regression``, ...)
    overwrite       replace a different simharps dataset found in ``out_dir``
    """
    rows = [dict(row) for row in rows]
    if not rows:
        raise ParameterError("rows: the population is empty; need at least one spectrum")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
    seed, workers = int(seed), check_workers(workers)
    check_scheduler(scheduler)
    channels = Channels.from_dict(channels)
    encoding = Encoding(dict(dtypes or {}))
    out_dir = Path(out_dir)
    identity = simulator_identity(simulate_batch)
    rows_sha256 = hashlib.sha256(canonical_json(rows).encode()).hexdigest()
    fingerprint = hashlib.sha256(canonical_json({
        "seed": seed, "chunk_size": chunk_size, "rows_sha256": rows_sha256, "channels": channels.to_dict(),
        "encoding": encoding.to_dict(), "simulator": identity}).encode()).hexdigest()

    writer = DatasetWriter(out_dir, len(rows), chunk_size)
    run_info = {"workers": workers, "scheduler": None if scheduler is None else str(scheduler)}
    if writer.begin(fingerprint, overwrite=overwrite, run_info=run_info) == "complete":
        return Dataset(out_dir)
    done = writer.completed_chunks()
    tasks = []
    for chunk in range(writer.n_chunks):
        if chunk not in done:
            start, stop = writer.bounds(chunk)
            tasks.append(ChunkTask(chunk, start, rows[start:stop], seed, simulate_batch, channels, encoding,
                                   fingerprint))
    n_done = sum(stop - start for start, stop in map(writer.bounds, done))
    began = time.perf_counter()
    with _progress_bar(len(rows), n_done, f"simulate {out_dir.name}", progress) as bar:
        n_failed = 0

        def handle(result):
            nonlocal n_failed
            if result.wavelength_air_aa is not None:
                writer.put_wavelength(result.wavelength_air_aa)
            writer.put_chunk(result.chunk, result.data)
            n_failed += result.n_failed
            bar.update(result.n_spectra)
            if n_failed:
                bar.set_postfix(failed=n_failed)

        if scheduler is None:
            _run_local(tasks, workers, handle)
        else:
            _run_dask(tasks, scheduler, workers, handle)

    header = {"source": "simulated", "seed": seed, "seed_scheme": "SeedSequence(entropy=seed, spawn_key=row seed_key, else (i,))",
              "scenario": None if scenario_text is None else
              {"text": scenario_text, "sha256": hashlib.sha256(scenario_text.encode()).hexdigest()},
              "simulator": identity, "rows_sha256": rows_sha256, "channels": channels.to_dict(),
              "encoding": encoding.to_dict(), "versions": package_versions()}
    dataset = writer.finalise(header, manifest_extra)
    run = {**json.loads((out_dir / RUN_FILE).read_text()), "chunks_computed": len(tasks),
           "spectra_computed": sum(len(task.rows) for task in tasks),
           "wall_s": round(time.perf_counter() - began, 3)}
    write_json(out_dir / RUN_FILE, run)
    return dataset
