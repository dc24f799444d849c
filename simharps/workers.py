"""Worker processes that leave Ctrl-C to their parent and die with it (``WorkerPool``).

Used by dataset generation (``simharps.dataset.runner``), ingest and the stellar template builder: after a
``kill -9`` of the parent no worker keeps running (tested on a real process tree, ``tests/test_cli_robustness.py``).
"""

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PARENT_POLL_S = 1.0
"""How often a worker process checks that the process which started it is still alive (seconds)."""
PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""


def _exit_with_parent(parent_pid):
    """Worker initializer: ignore Ctrl-C (the parent stops the pool) and exit when the parent process dies.

    On Linux the kernel sends SIGTERM at the parent's death (prctl PR_SET_PDEATHSIG); everywhere a daemon thread
    polls the parent pid every PARENT_POLL_S seconds. Either way no worker outlives a killed (kill -9) run.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="simharps-parent-watch", daemon=True).start()


def _watch_parent(parent_pid):
    """Exit this process (at once, no clean-up) as soon as its parent is no longer ``parent_pid``."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


@contextmanager
def _sigint_blocked():
    """Hold back SIGINT in this thread meanwhile; processes started meanwhile inherit it blocked."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows has no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerPool(ProcessPoolExecutor):
    """A ProcessPoolExecutor of ``workers`` processes that leave Ctrl-C to this process and exit when it dies.

    Workers start with SIGINT blocked (a Ctrl-C reaches the whole process group: only this process handles it,
    no worker prints a traceback); leaving the ``with`` block on an exception (Ctrl-C included) stops them at once
    instead of waiting for their running tasks.
    """

    def __init__(self, workers, context=None):
        super().__init__(max_workers=workers, mp_context=context, initializer=_exit_with_parent,
                         initargs=(os.getpid(),))

    def submit(self, fn, /, *args, **kwargs):
        with _sigint_blocked():  # workers are started by submit
            return super().submit(fn, *args, **kwargs)

    def stop(self):
        """Cancel the queued tasks and terminate the workers now."""
        processes = list((self._processes or {}).values())  # no public way to stop busy workers before Python 3.14
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self.stop()
        return super().__exit__(kind, value, traceback)
