"""Bad files, folders and processes at the command line (issue #11): one clear message and exit status 2 (130 after
Ctrl-C), no traceback, and no process left running after the command ends or is killed."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from simharps.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CI_SCENARIO = PROJECT_ROOT / "scenarios" / "ci.yaml"
S1D = "HARPS.2010-09-18T23:42:36.178_s1d_A.fits"
WORKER_WAIT_S = 300
"""Longest wait for a subprocess's simulation workers (a fresh template cache is built first)."""
EXIT_WAIT_S = 10
"""Longest time the processes of a killed or interrupted run may take to exit."""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")


def one_error(capsys, command):
    """The command's stderr, checked to be one `simharps COMMAND: error:` line without a traceback."""
    err = capsys.readouterr().err
    assert err.startswith(f"simharps {command}: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


# --------------------------------------------------------------------------------------------------------------
# --out and SIMHARPS_CACHE


@pytest.mark.parametrize("command, args", [
    ("simulate", [str(CI_SCENARIO)]),
    ("run", [str(CI_SCENARIO)]),
    ("ingest", ["any.fits"]),
])
def test_out_that_is_a_file_is_one_message(tmp_path, capsys, command, args):
    afile = a_file(tmp_path)
    assert main([command, *args, "--out", str(afile)]) == 2
    assert f"--out {afile}: it is a file, not a folder" in one_error(capsys, command)
    assert main([command, *args, "--out", str(afile / "sub")]) == 2
    assert f"--out {afile / 'sub'}: {afile} is a file, not a folder" in one_error(capsys, command)


def test_spectrum_out_that_is_a_file_is_one_message(tmp_path, capsys):
    afile = a_file(tmp_path)
    assert main(["spectrum", "--out", str(afile), "--window", "6270", "6280"]) == 2
    err = one_error(capsys, "spectrum")
    assert str(afile) in err and "is a file, not a folder" in err


def test_plot_out_under_a_file_or_at_a_folder_is_one_message(harps_dir, tmp_path, capsys):
    afile = a_file(tmp_path)
    assert main(["plot", str(harps_dir / S1D), "--out", str(afile / "x.png")]) == 2
    assert f"{afile} is a file, not a folder" in one_error(capsys, "plot")
    assert main(["plot", str(harps_dir / S1D), "--out", str(tmp_path)]) == 2
    assert "it is a folder; give the name of the PNG file" in one_error(capsys, "plot")


def test_read_only_out_folder_is_one_message(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: refuse the write probe as the kernel does for anyone else

        def refuse(*args, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", dir)

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert main(["ingest", "any.fits", "--out", str(folder / "dataset")]) == 2
    err = one_error(capsys, "ingest")
    assert f"cannot write in {folder} (Permission denied); no permission" in err


def test_disk_full_while_writing_is_one_message(harps_dir, tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    def full(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Figure, "savefig", full)
    out = tmp_path / "x.png"
    assert main(["plot", str(harps_dir / S1D), "--out", str(out)]) == 2
    assert f"{out}: No space left on device; the disk is full" in one_error(capsys, "plot")


@pytest.mark.slow
def test_template_cache_under_a_file_is_one_message(tmp_path):
    """In a fresh process: the built-in stellar model (and its cache folder) is made once per process."""
    afile = a_file(tmp_path)
    completed = subprocess.run([sys.executable, "-m", "simharps.cli", "simulate", str(CI_SCENARIO), "--quiet",
                                "--out", str(tmp_path / "dataset")], capture_output=True, text=True, cwd=PROJECT_ROOT,
                               env={**os.environ, "SIMHARPS_CACHE": str(afile)}, timeout=600)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr
    assert completed.stderr.count("\n") == 1
    assert "set SIMHARPS_CACHE to a folder you can write to" in completed.stderr
    assert f"{afile} is a file, not a folder" in completed.stderr


# --------------------------------------------------------------------------------------------------------------
# Ctrl-C and kill -9


@pytest.mark.parametrize("command, hint", [
    ("ingest", "interrupted; nothing was ingested; run the same command again to start over"),
    ("plot", "interrupted"),
])
def test_ctrl_c_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys, command, hint):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("simharps.pipeline.ingest_paths", interrupt)
    monkeypatch.setattr("simharps.io.read_harps", interrupt)
    assert main([command, str(tmp_path / "any.fits"), "--out", str(tmp_path / "out.png")]) == 130
    assert capsys.readouterr().err == f"simharps {command}: {hint}\n"


def _slow_scenario(tmp_path):
    """The CI scenario with 48 spectra (3 chunks): long enough to be interrupted with its workers running."""
    path = tmp_path / "slow.yaml"
    path.write_text(CI_SCENARIO.read_text().replace("n_targets: 2", "n_targets: 24"))
    return path


def _children():
    """{parent pid: [child pids]} of the live (not zombie) processes, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z":
            table.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return table


def _descendants(pid):
    table, found, todo = _children(), [], [pid]
    while todo:
        children = table.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _alive(pids):
    running = {child for children in _children().values() for child in children}
    return [pid for pid in pids if pid in running]


def _is_worker(pid):
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _start_simulation(tmp_path, out, workers=2):
    """A `simharps simulate --workers 2` in its own session, returned once its simulation workers run; its stdout
    and stderr go to files (a pipe would stay open as long as any worker lives)."""
    command = [sys.executable, "-m", "simharps.cli", "simulate", str(_slow_scenario(tmp_path)), "--out", str(out),
               "--workers", str(workers), "--quiet"]
    with (tmp_path / "stdout").open("w") as stdout, (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=stdout, stderr=stderr, start_new_session=True)
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline and process.poll() is None:
        # run.json: the templates are built and the dataset begun; the spawned processes now are chunk workers
        if (out / "run.json").exists() and sum(map(_is_worker, _descendants(process.pid))) >= workers:
            return process
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the simulation's {workers} workers never ran: {(tmp_path / 'stderr').read_text()}")


def _wait_gone(pids):
    """Seconds until none of ``pids`` runs (fails after EXIT_WAIT_S, killing what is left)."""
    started = time.monotonic()
    while _alive(pids) and time.monotonic() - started < EXIT_WAIT_S:
        time.sleep(0.05)
    left = _alive(pids)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} still ran {EXIT_WAIT_S} s after their run ended"
    return time.monotonic() - started


@linux_only
@pytest.mark.slow
def test_ctrl_c_during_simulate_is_one_line_and_resumes(tmp_path):
    out = tmp_path / "dataset"
    process = _start_simulation(tmp_path, out)
    tree = _descendants(process.pid)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the whole process group
    assert process.wait(timeout=60) == 130
    _wait_gone(tree)
    assert (tmp_path / "stderr").read_text() == ("simharps simulate: interrupted; run the same command again to "
                                                 "resume (the chunks already written are kept)\n")
    again = subprocess.run([sys.executable, "-m", "simharps.cli", "simulate", str(tmp_path / "slow.yaml"),
                            "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert again.returncode == 0 and "48 spectra" in again.stdout, again.stderr


@linux_only
@pytest.mark.slow
def test_kill_9_of_simulate_leaves_no_process(tmp_path):
    process = _start_simulation(tmp_path, tmp_path / "dataset")
    tree = _descendants(process.pid)  # 2 workers and the multiprocessing resource tracker
    assert len(tree) >= 3
    process.kill()
    process.wait()
    print(f"{len(tree)} processes gone {_wait_gone(tree):.2f} s after kill -9 of their parent")


# --------------------------------------------------------------------------------------------------------------
# Misleading messages and refused options


def test_plot_reversed_window_says_start_below_stop(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "any.fits"), "--window", "6920", "6860"]) == 2
    assert "--window 6920 6860: the start must be below the stop" in one_error(capsys, "plot")


def test_plot_spectrum_refuses_a_reversed_window(tmp_path):
    from simharps.plotting import plot_spectrum

    with pytest.raises(ValueError, match="start must be below the stop"):
        plot_spectrum(tmp_path / "x.png", [6860.0, 6920.0], [1.0, 1.0], window=(6920.0, 6860.0))


def test_plot_folder_says_it_is_a_folder(tmp_path, capsys):
    (tmp_path / "a.fits").write_bytes(b"")
    assert main(["plot", str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder; give one FITS file, e.g. {tmp_path / 'a.fits'}" in one_error(capsys, "plot")


@pytest.mark.parametrize("command, args", [
    ("simulate", [str(CI_SCENARIO)]),
    ("run", [str(CI_SCENARIO)]),
    ("ingest", ["any.fits"]),
])
@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_1_are_refused(tmp_path, capsys, command, args, workers):
    assert main([command, *args, "--out", str(tmp_path / "out"), "--workers", workers]) == 2
    assert f"workers must be an integer >= 1, got {workers}" in one_error(capsys, command)


def test_unknown_scheduler_is_refused(tmp_path, capsys):
    assert main(["simulate", str(CI_SCENARIO), "--out", str(tmp_path / "out"), "--scheduler", "bogus"]) == 2
    err = one_error(capsys, "simulate")
    assert "scheduler must be 'local'" in err and "'tcp://host:8786', got 'bogus'" in err


def test_unreachable_scheduler_is_one_message(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr("simharps.dataset.runner.SCHEDULER_TIMEOUT_S", 2)
    assert main(["simulate", str(CI_SCENARIO), "--out", str(tmp_path / "out"), "--quiet",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1' within 2 s" in one_error(capsys, "simulate")


def test_spectrum_negative_seed_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["spectrum", "--seed", "-1"])
    assert stop.value.code == 2
    assert "argument --seed: a seed is an integer >= 0, got '-1'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# Ingest duplicates, simulate --overwrite


def test_ingest_reads_each_file_once(harps_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(harps_dir / S1D, folder / "a.fits")
    shutil.copy(harps_dir / S1D, tmp_path / "copy.fits")
    out = tmp_path / "dataset"
    assert main(["ingest", str(folder), str(folder / "a.fits"), str(folder / ".." / "in" / "a.fits"),
                 str(tmp_path / "copy.fits"), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert "1 spectra ingested, 1 files rejected" in stdout
    assert f"skipped duplicate path {folder / 'a.fits'}: listed twice" in stdout
    assert f"skipped duplicate path {folder / '..' / 'in' / 'a.fits'}: the same file as {folder / 'a.fits'}" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [entry["path"] for entry in manifest["skipped"]] == [str(folder / "a.fits"),
                                                               str(folder / ".." / "in" / "a.fits")]
    (rejected,) = manifest["rejected"]
    assert rejected["path"] == str(tmp_path / "copy.fits")
    assert rejected["reason"].startswith(f"duplicate of {folder / 'a.fits'} (identical content, sha256 ")


def test_simulate_overwrite_drops_the_old_first_spectrum_png(tmp_path):
    out = tmp_path / "dataset"
    png = out / "first_spectrum.png"
    other = tmp_path / "other.yaml"
    other.write_text(CI_SCENARIO.read_text().replace("seed: 1", "seed: 2"))
    assert main(["simulate", str(CI_SCENARIO), "--out", str(out), "--quiet", "--plot"]) == 0
    old = png.read_bytes()
    assert main(["simulate", str(CI_SCENARIO), "--out", str(out), "--quiet"]) == 0  # the same dataset: PNG kept
    assert png.read_bytes() == old
    assert main(["simulate", str(other), "--out", str(out), "--quiet", "--overwrite", "--plot"]) == 0
    assert png.read_bytes() != old
    assert main(["simulate", str(CI_SCENARIO), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert not png.exists()


def test_simulate_into_a_foreign_folder_keeps_its_png(tmp_path, capsys):
    png = tmp_path / "first_spectrum.png"
    png.write_bytes(b"someone else's figure")
    assert main(["simulate", str(CI_SCENARIO), "--out", str(tmp_path), "--quiet"]) == 2
    assert "is not empty and is not a simharps dataset" in one_error(capsys, "simulate")
    assert png.read_bytes() == b"someone else's figure"
