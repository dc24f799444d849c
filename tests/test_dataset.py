"""Dataset store and generation runner, tested with a small deterministic fake simulator (no physics).

The fake ``FakeSimulator`` makes 2,000-channel spectra (absorption lines at the row's RV, Gaussian noise drawn
from the spectrum's SeedSequence), can report chosen spectra as failed (row key ``fail``), raise for a whole batch
(row key ``explode``), sleep per call, or "crash" (raise a BaseException) after k calls.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from simharps.dataset import (Channels, Dataset, DatasetError, generate, open_dataset, spectrum_seeds,
                              write_dataset)
from simharps.dataset.layout import MANIFEST_FILE, RUN_FILE
from simharps.dataset.table import build_table
from simharps.errors import ParameterError, SimharpsError

N_CHANNELS = 2000
LINE_CENTRES_AA = np.array([5002.0, 5005.5, 5011.3, 5016.0])


class SimulatedCrash(BaseException):
    """Stands for the process being stopped mid-run (BaseException: the runner must not swallow it)."""


@dataclass
class FakeBatch:
    wavelength_air_aa: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    components: dict
    truth: list
    failed: list


@dataclass
class FakeSimulator:
    """simulate_batch stand-in; ``calls`` counts batches in this process."""

    crash_after: int | None = None
    delay_s: float = 0.0
    with_components: bool = True
    calls: int = field(default=0, compare=False)

    def __call__(self, rows, seeds):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise SimulatedCrash(f"crash at call {self.calls}")
        if self.delay_s:
            time.sleep(self.delay_s)
        if any(row.get("explode") for row in rows):
            raise RuntimeError("the simulator exploded")
        wave = np.arange(500000, 500000 + N_CHANNELS) * 0.01
        n = len(rows)
        flux = np.zeros((n, N_CHANNELS), np.float32)
        error = np.zeros_like(flux)
        stellar = np.zeros_like(flux)
        truth, failed = [], []
        for j, (row, seq) in enumerate(zip(rows, seeds)):
            if row.get("fail"):
                failed.append((j, f"requested failure of {row['target_id']}"))
                truth.append(dict(row))
                continue
            rng = np.random.default_rng(seq)
            shifted = LINE_CENTRES_AA * (1 + row["rv_kms"] / 299792.458)
            lines = 1 - 0.6 * np.exp(-0.5 * ((wave[:, None] - shifted) / 0.05) ** 2).sum(axis=1).clip(0, 1)
            sigma = row["level"] * np.sqrt(lines) / row["snr"]
            flux[j] = row["level"] * lines + rng.normal(size=N_CHANNELS) * sigma
            error[j] = sigma
            stellar[j] = lines
            truth.append({**row, "berv_kms": float(rng.uniform(-30, 30)), "snr_550": float(row["snr"])})
        components = {"stellar": stellar} if self.with_components else {}
        return FakeBatch(wave, flux, error, components, truth, failed)


def population(n, fail=(), explode=()):
    return [{"target_id": f"star {i % 4}", "epoch": i // 4, "rv_kms": -20.0 + 1.7 * i,
             "level": [1e-13, 1.0, 3e4, 2e7][i % 4], "snr": 20.0 + 3 * i,
             **({"fail": True} if i in fail else {}), **({"explode": True} if i in explode else {})}
            for i in range(n)]


def dataset_files(path):
    """name -> bytes of everything that must be reproducible (all but run.json)."""
    path = Path(path)
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != RUN_FILE}


N_SPECTRA, CHUNK = 23, 5


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted single-process run: the bytes every other way of running must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "ds"
    generate(population(N_SPECTRA), 7, out, FakeSimulator(), chunk_size=CHUNK, progress=False)
    return out


def test_reader_returns_what_the_simulator_made(tmp_path):
    rows = population(N_SPECTRA)
    out = tmp_path / "ds"
    ds = generate(rows, 7, out, FakeSimulator(), chunk_size=CHUNK, dtypes={"flux": "float32", "error": "float32",
                                                                          "stellar": "float32"}, progress=False)
    direct = FakeSimulator()(rows, spectrum_seeds(7, 0, rows))
    assert len(ds) == N_SPECTRA and ds.n_channels == N_CHANNELS
    assert ds.flux.shape == (N_SPECTRA, N_CHANNELS) and ds.array_names == ["flux", "error", "stellar"]
    np.testing.assert_array_equal(ds.wavelength_air_aa, direct.wavelength_air_aa)
    np.testing.assert_array_equal(ds.flux[:], direct.flux)
    np.testing.assert_array_equal(ds.error[3:17], direct.error[3:17])
    np.testing.assert_array_equal(ds.components["stellar"][-1], direct.components["stellar"][-1])
    np.testing.assert_array_equal(ds.flux[[22, 0, 6, 5]], direct.flux[[22, 0, 6, 5]])
    mask = np.arange(N_SPECTRA) % 3 == 0
    np.testing.assert_array_equal(ds.flux[mask, 100:200], direct.flux[mask, 100:200])
    np.testing.assert_array_equal(np.asarray(ds.error), direct.error)
    assert ds.flux[4:4].shape == (0, N_CHANNELS)
    with pytest.raises(IndexError):
        ds.flux[N_SPECTRA]

    table = ds.table
    assert list(table["spectrum_index"]) == list(range(N_SPECTRA)) and not table["failed"].any()
    assert list(table["target_id"][:5]) == ["star 0", "star 1", "star 2", "star 3", "star 0"]
    assert table["epoch"].dtype.kind == "i"
    np.testing.assert_array_equal(table["berv_kms"], [t["berv_kms"] for t in direct.truth])
    np.testing.assert_array_equal(table["rv_kms"], [r["rv_kms"] for r in rows])

    batches = list(ds.iter_batches(batch_size=7, arrays=("flux",)))
    assert [(b.start, b.stop) for b in batches] == [(0, 7), (7, 14), (14, 21), (21, 23)]
    np.testing.assert_array_equal(np.concatenate([b.flux for b in batches]), direct.flux)
    assert list(batches[1].table["spectrum_index"]) == list(range(7, 14))

    manifest = ds.manifest
    assert manifest["counts"] == {"n_spectra": 23, "n_failed": 0, "n_channels": 2000, "chunk_size": 5,
                                  "n_chunks": 5}
    assert manifest["wavelength"]["step_aa"] == 0.01 and manifest["wavelength"]["on_0p01_lattice"]
    assert manifest["wavelength"]["start_aa"] == 5000.0 and manifest["seed"] == 7
    assert set(manifest["versions"]) >= {"simharps", "numpy", "scipy", "astropy", "zlib", "python"}
    assert [c["stop"] - c["start"] for c in manifest["chunks"]] == [5, 5, 5, 5, 3]


def test_float16_storage_error_is_small_against_the_noise(reference):
    ds = open_dataset(reference)
    rows = population(N_SPECTRA)
    direct = FakeSimulator()(rows, spectrum_seeds(7, 0, rows))
    flux, error = ds.flux[:], ds.error[:]
    # levels span 1e-13 .. 2e7: the per-spectrum power-of-two scale keeps float16 in range for all of them
    assert np.all(np.isfinite(flux)) and np.all(error > 0)
    relative = np.abs(flux - direct.flux) / np.abs(direct.flux)
    assert relative.max() <= 2.0**-11
    assert np.max(np.abs(error - direct.error) / direct.error) <= 2.0**-11
    rms = np.sqrt(np.mean(((flux - direct.flux) / direct.error) ** 2, axis=1))
    recorded = ds.manifest["arrays"]["flux"]["rounding_rms_over_error"]
    assert recorded["max"] == pytest.approx(rms.max(), rel=1e-3)
    # S/N 20..86 here: the rounding adds < 2 % of the noise in quadrature
    assert rms.max() < 0.02 and rms.max() > 0
    assert ds.manifest["arrays"]["flux"]["stored_dtype"] == "float16"


def test_one_and_two_worker_processes_give_identical_bytes(reference, tmp_path):
    out = tmp_path / "two"
    generate(population(N_SPECTRA), 7, out, FakeSimulator(), chunk_size=CHUNK, workers=2, progress=False)
    assert dataset_files(out) == dataset_files(reference)
    assert json.loads((out / RUN_FILE).read_text())["workers"] == 2


def test_dask_local_cluster_gives_identical_bytes(reference, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        generate(population(N_SPECTRA), 7, tmp_path / "dask", FakeSimulator(), chunk_size=CHUNK, scheduler=client,
                 progress=False)
    assert dataset_files(tmp_path / "dask") == dataset_files(reference)


def test_crash_then_resume_reproduces_an_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "crashed"
    with pytest.raises(SimulatedCrash):
        generate(population(N_SPECTRA), 7, out, FakeSimulator(crash_after=2), chunk_size=CHUNK, progress=False)
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["chunk-000000.zip", "chunk-000001.zip"]
    assert not (out / MANIFEST_FILE).exists()
    with pytest.raises(DatasetError, match="has not finished"):
        Dataset(out)
    generate(population(N_SPECTRA), 7, out, FakeSimulator(), chunk_size=CHUNK, progress=False)
    assert dataset_files(out) == dataset_files(reference)
    assert json.loads((out / RUN_FILE).read_text())["chunks_computed"] == 3
    # running it again finds the dataset complete and computes nothing
    sim = FakeSimulator()
    generate(population(N_SPECTRA), 7, out, sim, chunk_size=CHUNK, progress=False)
    assert sim.calls == 0


def test_half_written_chunks_never_read_as_valid(reference, tmp_path):
    out = tmp_path / "torn"
    out.mkdir()
    for name, data in dataset_files(reference).items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_bytes(data)
    (out / RUN_FILE).write_bytes((reference / RUN_FILE).read_bytes())
    (out / MANIFEST_FILE).unlink()
    torn = out / "chunks" / "chunk-000003.zip"
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])   # what a non-atomic writer would leave
    (out / "chunks" / ".partial-999-chunk-000004.zip").write_bytes(b"PK\x03\x04 interrupted")
    generate(population(N_SPECTRA), 7, out, FakeSimulator(), chunk_size=CHUNK, progress=False)
    assert json.loads((out / RUN_FILE).read_text())["chunks_computed"] == 1
    assert dataset_files(out) == dataset_files(reference)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_dataset import FakeSimulator, population
from simharps.dataset import generate
generate(population({n}), 7, {out!r}, FakeSimulator(delay_s=0.6), chunk_size={chunk}, progress=False)
"""


def test_killed_process_then_resume_reproduces_an_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), n=N_SPECTRA, out=str(out), chunk=CHUNK)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("chunks/chunk-*.zip")):
            assert process.poll() is None, "the generation finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / MANIFEST_FILE).exists()
    for chunk in (out / "chunks").glob("chunk-*.zip"):
        with zipfile.ZipFile(chunk) as archive:
            assert archive.testzip() is None
    generate(population(N_SPECTRA), 7, out, FakeSimulator(), chunk_size=CHUNK, progress=False)
    assert dataset_files(out) == dataset_files(reference)


def test_bad_spectra_are_skipped_flagged_and_reported(reference, tmp_path):
    rows = population(N_SPECTRA, fail=(3, 11), explode=(7,))
    ds = generate(rows, 7, tmp_path / "bad", FakeSimulator(), chunk_size=CHUNK, progress=False)
    good = open_dataset(reference)
    bad = [3, 7, 11]
    assert list(np.flatnonzero(ds.table["failed"])) == bad
    assert [f["index"] for f in ds.manifest["failed"]] == bad
    assert ds.manifest["failed"][1]["reason"] == "RuntimeError: the simulator exploded"
    assert ds.manifest["failed"][0]["reason"] == "requested failure of star 3"
    assert ds.manifest["counts"]["n_failed"] == 3
    for name in ("flux", "error", "stellar"):
        values = ds[name][:]
        assert np.all(np.isnan(values[bad]))
        keep = np.setdiff1d(np.arange(N_SPECTRA), bad)
        # the other spectra (including those batched with the one that exploded) are unchanged
        np.testing.assert_array_equal(values[keep], good[name][keep])
    assert ds.table["target_id"][7] == "star 3" and np.isnan(ds.table["berv_kms"][7])


def test_every_spectrum_failing_is_an_error(tmp_path):
    with pytest.raises(SimharpsError, match="every one of the 3 spectra failed; first reason: RuntimeError"):
        generate(population(3, explode=(0, 1, 2)), 1, tmp_path / "none", FakeSimulator(), progress=False)


def test_another_run_in_the_same_directory_is_refused(reference, tmp_path):
    out = tmp_path / "ds"
    generate(population(6), 1, out, FakeSimulator(), chunk_size=4, progress=False)
    with pytest.raises(DatasetError, match="holds a different dataset"):
        generate(population(6), 2, out, FakeSimulator(), chunk_size=4, progress=False)
    with pytest.raises(DatasetError, match="holds a different dataset"):
        generate(population(6), 1, out, FakeSimulator(), chunk_size=3, progress=False)
    ds = generate(population(6), 2, out, FakeSimulator(), chunk_size=3, progress=False, overwrite=True)
    assert ds.manifest["seed"] == 2 and len(ds.manifest["chunks"]) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a simharps dataset"):
        generate(population(2), 1, foreign, FakeSimulator(), progress=False, overwrite=True)
    assert (foreign / "notes.txt").exists()


def test_bad_arguments_raise_parameter_errors(tmp_path):
    with pytest.raises(ParameterError, match="seed"):
        generate(population(2), -1, tmp_path / "a", FakeSimulator(), progress=False)
    with pytest.raises(ParameterError, match="population is empty"):
        generate([], 1, tmp_path / "a", FakeSimulator(), progress=False)
    with pytest.raises(ParameterError, match="dtypes"):
        generate(population(2), 1, tmp_path / "a", FakeSimulator(), dtypes={"flux": "int8"}, progress=False)
    with pytest.raises(ParameterError, match="channels.method"):
        Channels(method="median")
    with pytest.raises(ParameterError, match="holds no channel"):
        generate(population(2), 1, tmp_path / "b", FakeSimulator(), channels={"start_aa": 6000, "stop_aa": 6001},
                 progress=False)


def test_simulator_breaking_the_contract_is_fatal(tmp_path):
    def wrong_shape(rows, seeds):
        batch = FakeSimulator()(rows, seeds)
        batch.flux = batch.flux[:, :10]
        return batch

    with pytest.raises(SimharpsError, match=r"flux of shape \(2, 10\); need \(2, 2000\)"):
        generate(population(2), 1, tmp_path / "x", wrong_shape, progress=False)


def test_channels_window_binning_and_decimation(tmp_path):
    rows = population(4)
    direct = FakeSimulator()(rows, spectrum_seeds(3, 0, rows))
    spec = {"start_aa": 5003.0, "stop_aa": 5012.99, "factor": 4}
    ds = generate(rows, 3, tmp_path / "binned", FakeSimulator(), channels=spec,
                  dtypes={"flux": "float32", "error": "float32"}, progress=False)
    first = 300   # 5003.00 A
    blocks = direct.flux[:, first:first + 1000].reshape(4, 250, 4).astype(np.float64)
    np.testing.assert_allclose(ds.flux[:], blocks.mean(axis=2), rtol=1e-6)
    err_blocks = direct.error[:, first:first + 1000].reshape(4, 250, 4).astype(np.float64)
    np.testing.assert_allclose(ds.error[:], np.sqrt((err_blocks**2).sum(axis=2)) / 4, rtol=1e-6)
    np.testing.assert_allclose(ds.wavelength_air_aa, 5003.015 + 0.04 * np.arange(250), atol=1e-9)
    grid = ds.manifest["wavelength"]
    assert grid["n"] == 250 and grid["step_aa"] == pytest.approx(0.04) and not grid["on_0p01_lattice"]
    assert grid["channels"] == {**spec, "n_channels": None, "method": "bin"}

    wave, arrays = Channels(n_channels=300, method="decimate").apply(direct.wavelength_air_aa,
                                                                     {"flux": direct.flux})
    factor, first = 2000 // 300, (2000 - 300 * 6) // 2
    np.testing.assert_array_equal(arrays["flux"], direct.flux[:, first + 3:first + 6 * 300:6])
    np.testing.assert_array_equal(wave, direct.wavelength_air_aa[first + 3:first + 6 * 300:6])
    assert factor == 6 and wave.size == 300


def test_write_dataset_keeps_metadata_text_exactly(tmp_path):
    wave = np.arange(400000, 400100) * 0.01
    rng = np.random.default_rng(0)
    flux = rng.normal(100, 5, size=(3, 100)).astype(np.float32)
    error = np.full_like(flux, np.nan)
    rows = [{"object": "#comment-like", "target_id": "", "site": "  padded ", "airmass": 1.2, "epoch": 0},
            {"object": "α Cen, \"A\"\nline 2", "target_id": "HD 1", "site": "lasilla", "airmass": None,
             "epoch": 1},
            {"object": "bad file", "target_id": "HD 2", "site": "lasilla", "airmass": 1.5, "epoch": 2}]
    ds = write_dataset(tmp_path / "real", wave, {"flux": flux, "error": error}, rows, chunk_size=2,
                       failed=[(2, "truncated FITS")], dtypes={"flux": "float32"},
                       manifest_extra={"analysis": {"preprocess": {"normalise": "median"}}, "ingest": {"n": 3}})
    table = ds.table
    assert list(table["object"]) == [r["object"] for r in rows]
    assert list(table["target_id"]) == ["", "HD 1", "HD 2"] and list(table["site"])[0] == "  padded "
    assert np.isnan(table["airmass"][1]) and list(table["epoch"]) == [0, 1, 2]
    assert list(table["failed"]) == [False, False, True]
    assert ds.manifest["source"] == "real" and ds.manifest["failed"] == [{"index": 2, "reason": "truncated FITS"}]
    assert ds.manifest["analysis"] == {"preprocess": {"normalise": "median"}} and ds.manifest["ingest"] == {"n": 3}
    assert ds.manifest["regression"] == {}
    np.testing.assert_array_equal(ds.flux[:], flux)
    assert np.all(np.isnan(ds.error[:])) and "rounding_max_relative" not in ds.manifest["arrays"]["error"]


def test_table_column_types():
    table = build_table([{"a": 1, "b": True, "c": "x", "d": [1, 2], "e": 1.5, "f": None},
                         {"a": 2, "b": False, "c": 3, "d": ("p", "q"), "e": None}], failed_indices=[1])
    assert table.dtype["a"] == np.dtype("<i8") and table.dtype["b"] == np.dtype(bool)
    assert list(table["c"]) == ["x", "3"] and list(table["d"]) == ["1,2", "p,q"]
    assert np.isnan(table["e"][1]) and list(table["failed"]) == [False, True]
    assert table.dtype["f"] == np.dtype("<f8") and np.all(np.isnan(table["f"]))
    with pytest.raises(SimharpsError, match="reserved"):
        build_table([{"failed": 1}])


def test_progress_is_quiet_without_a_terminal(tmp_path, capfd):
    generate(population(3), 1, tmp_path / "q", FakeSimulator(), progress=True)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_end_to_end_with_the_forward_model(tmp_path):
    forward = pytest.importorskip("simharps.forward", reason="simharps.forward is not available")
    from functools import partial

    rows = [dict(teff_k=5770.0, logg_cgs=4.44, mh_dex=0.0, vsini_kms=2.0, rv_kms=12.0, vmag=8.0, exptime_s=600.0,
                 ra_deg=90.1, dec_deg=-56.2, mjd_utc=58430.275, airmass=1.2, pwv_mm=3.0, seeing_arcsec=0.9,
                 target_id="sun-like", epoch=0),
            dict(teff_k=4800.0, logg_cgs=4.6, mh_dex=-0.3, vsini_kms=1.0, rv_kms=-30.0, vmag=9.0, exptime_s=900.0,
                 ra_deg=200.0, dec_deg=-30.0, mjd_utc=58600.1, airmass=1.4, pwv_mm=8.0, seeing_arcsec=1.1,
                 target_id="k-dwarf", epoch=0)]
    simulate = partial(forward.simulate_batch, components=True, window=(5000.0, 5050.0))
    ds = generate(rows, 11, tmp_path / "fwd", simulate, chunk_size=1, progress=False)
    direct = forward.simulate(rows[1], spectrum_seeds(11, 1, rows[1:])[0], components=True, window=(5000.0, 5050.0))
    assert len(ds) == 2 and not ds.table["failed"].any()
    np.testing.assert_array_equal(ds.wavelength_air_aa, direct.wavelength_air_aa)
    assert ds.manifest["wavelength"]["on_0p01_lattice"] and ds.manifest["wavelength"]["start_aa"] == 5000.0
    assert {"stellar", "telluric", "response"} <= set(ds.array_names)
    flux = ds.flux[1]
    finite = np.isfinite(direct.flux)
    np.testing.assert_allclose(flux[finite], direct.flux[finite], rtol=2.0**-11)
    assert ds.table["berv_kms"][1] == pytest.approx(direct.truth["berv_kms"], abs=0)
    # snr_550 is undefined (None) when order 50 lies outside the window: a float column of NaN
    assert ds.table["snr_550"].dtype.kind == "f" and ds.table["target_id"][1] == "k-dwarf"
    assert ds.table["stages"][0] == ",".join(direct.truth["stages"])


def test_seed_key_ties_the_noise_to_the_row_not_its_position(tmp_path):
    rows = [dict(row, seed_key=[3, i // 4, i % 4]) for i, row in enumerate(population(8))]
    forward_order = generate(rows, 5, tmp_path / "a", FakeSimulator(), chunk_size=3, progress=False,
                             dtypes={"flux": "float32"})
    backward_order = generate(rows[::-1], 5, tmp_path / "b", FakeSimulator(), chunk_size=3, progress=False,
                              dtypes={"flux": "float32"})
    np.testing.assert_array_equal(forward_order.flux[:], backward_order.flux[:][::-1])
    without_keys = generate(population(8), 5, tmp_path / "c", FakeSimulator(), chunk_size=3, progress=False,
                            dtypes={"flux": "float32"})
    assert not np.array_equal(forward_order.flux[:], without_keys.flux[:])
