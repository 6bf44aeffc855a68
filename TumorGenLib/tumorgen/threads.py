"""CPU threads on a shared machine: PyTorch's intra-op threads fit the cores other processes leave free.

A Slicer user's laptop is rarely idle. PyTorch's CPU kernels run in OpenMP
parallel regions with one thread per core, and every region ends in a barrier:
when another process holds one of the cores, each of the thousands of small
regions in a network evaluation waits for the thread that is not running, and
with OpenMP's default spin-waiting the waiting threads also burn the CPU the
other process needs. Measured on 2 cores with one busy-loop process beside it,
25 evaluations of the tiny denoiser + ControlNet and one encoding took 3.2 s
with 2 threads that spin 10,000 times, 1.1 s with 2 threads that sleep at once
and 1.0 s with one thread, against 0.7 s idle with 2 threads (with OpenMP's
default spinning and other work on the machine too: 74 s).

So the engine's command line and backend jobs

* make OpenMP threads spin only briefly at barriers before they sleep
  (``GOMP_SPINCOUNT=10000``, ``KMP_BLOCKTIME=0``) and keep numpy's OpenBLAS in
  one thread (``OPENBLAS_NUM_THREADS=1``) unless the user set them: this has
  to happen before numpy and PyTorch are imported (:func:`prepare_environment`);
* give PyTorch as many threads as there are cores that other processes do not
  use (:func:`free_cores`, measured from ``/proc/stat`` over a tenth of a
  second when the command or job starts), or ``TUMORGEN_THREADS`` when set
  (:func:`configure_threads`), and re-measure them every half second while
  the networks run (:func:`rebalance`).
"""

from __future__ import annotations

import math
import os
import time
from typing import MutableMapping

#: What the numerical libraries read when they load. GNU OpenMP (PyTorch's on Linux) spins 10,000 times at a barrier
#: before it sleeps instead of its default 300,000, and LLVM/Intel OpenMP sleeps at once: spinning threads burn the
#: core another process needs, while sleeping at once made the idle what-if 1.4 s slower (9.2 s against 7.7 s; 25
#: denoiser evaluations and an encoding 1.05 s against 0.69 s). numpy's OpenBLAS runs in the calling thread: its own
#: threads spin between calls and fought PyTorch's (the Poisson blending's conjugate-gradient solves, thousands of
#: small vector operations, took 2.7 s beside PyTorch's threads and 0.12 s with one OpenBLAS thread).
PASSIVE_WAIT = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "0", "OPENBLAS_NUM_THREADS": "1"}
#: Marks an ``OMP_NUM_THREADS`` that :func:`configure_threads` set, so that a child process (a backend job started by
#: the command line) measures its own free cores instead of taking it for the user's choice.
MEASURED_VARIABLE = "TUMORGEN_MEASURED_THREADS"
#: Seconds between re-measurements of the free cores during long work (:func:`rebalance`).
REBALANCE_EVERY = 0.5
#: Set this to a number of threads to skip the measurement.
THREADS_VARIABLE = "TUMORGEN_THREADS"


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Passive OpenMP waiting in ``environ`` (this process's environment by default), where not set already.

    Takes effect for libraries loaded afterwards: call it before importing numpy or PyTorch (child processes
    inherit it). Only the command line and the backend's job processes call it, not a host application that
    imports the package.
    """
    environ = os.environ if environ is None else environ
    for name, value in PASSIVE_WAIT.items():
        environ.setdefault(name, value)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine from ``/proc/stat``, in clock ticks; None where unreadable."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def other_load(interval: float = 0.1) -> float | None:
    """How many cores other processes kept busy over the next ``interval`` seconds; None where unknown.

    The machine's busy time from ``/proc/stat`` less this process's own CPU time over the same interval.
    """
    first, own_first, clock = _busy_jiffies(), os.times(), time.monotonic()
    if first is None:
        return None
    time.sleep(interval)
    second, own_second = _busy_jiffies(), os.times()
    elapsed = time.monotonic() - clock
    if second is None or elapsed <= 0:
        return None
    return _others(second[0] - first[0], (own_second.user + own_second.system) - (own_first.user + own_first.system), elapsed)


def _others(machine_ticks: int, own_seconds: float, elapsed: float) -> float:
    """Cores other processes kept busy: the machine's busy ticks less this process's CPU seconds, over ``elapsed``."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, (machine_ticks / ticks - own_seconds) / elapsed)


def free_cores(interval: float = 0.1) -> int:
    """The cores left to this process: its available cores less those other processes keep busy (at least 1).

    A core counts as taken when other processes used more than a quarter of it on average.
    """
    cores = available_cores()
    load = other_load(interval)
    if load is None:
        return cores
    return max(1, cores - math.floor(load + 0.75))


class _Governor:
    """What :func:`rebalance` needs between calls: whether it may change the threads, and the last readings."""

    enabled = False
    last: tuple[float, tuple[int, int], float] | None = None
    threads: int | None = None


def _reading() -> tuple[float, tuple[int, int], float] | None:
    machine = _busy_jiffies()
    if machine is None:
        return None
    own = os.times()
    return time.monotonic(), machine, own.user + own.system


def rebalance(min_interval: float = REBALANCE_EVERY) -> int | None:
    """During long numerical work: PyTorch's threads follow the cores other processes leave free.

    Cheap enough to call at every network evaluation: at most every ``min_interval`` seconds it compares the
    machine's busy time since the last call with this process's own and sets ``torch.set_num_threads`` to the free
    cores when that changed (a process that starts beside a running what-if takes a core; the thread count drops,
    and comes back when it ends). Active only after :func:`configure_threads` measured the free cores itself (not
    when ``TUMORGEN_THREADS`` or ``OMP_NUM_THREADS`` fixed them); returns the threads set, or None.
    """
    if not _Governor.enabled:
        return None
    now = _reading()
    if now is None:
        return None
    last = _Governor.last
    if last is not None and now[0] - last[0] < min_interval:
        return None
    _Governor.last = now
    if last is None:
        return None
    load = _others(now[1][0] - last[1][0], now[2] - last[2], now[0] - last[0])
    threads = max(1, available_cores() - math.floor(load + 0.75))
    import sys

    torch = sys.modules.get("torch")
    if torch is None or threads == _Governor.threads:
        return None
    torch.set_num_threads(threads)
    _Governor.threads = threads
    return threads


def hold_threads() -> None:
    """Stop :func:`rebalance` in this process: for work that sets PyTorch's threads itself (the dataset builder,
    whose cases must come out byte for byte the same in one process and on Ray)."""
    _Governor.enabled = False


def configure_threads(threads: int | None = None, environ: MutableMapping[str, str] | None = None) -> int | None:
    """PyTorch's (and ITK's) threads: ``threads``, else ``TUMORGEN_THREADS``, else :func:`free_cores`. Returns the
    number, or None when the user's ``OMP_NUM_THREADS`` decides.

    With PyTorch imported already it is set at once (``torch.set_num_threads``); otherwise ``OMP_NUM_THREADS`` is set
    in ``environ`` (this process's environment by default), which PyTorch reads when it is imported, so that a
    command that never needs PyTorch does not pay for importing it; likewise ITK's
    ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``. An ``OMP_NUM_THREADS`` the user set is kept
    unless ``threads`` or ``TUMORGEN_THREADS`` is given.
    """
    import sys

    environ = os.environ if environ is None else environ
    if threads is None:
        text = environ.get(THREADS_VARIABLE, "").strip()
        if text:
            threads = int(text) if text.isdigit() else 0
            if threads < 1:
                from tumorgen.errors import InputError

                raise InputError(f"{THREADS_VARIABLE} must be a positive whole number of threads, got {text!r}")
        elif environ.get("OMP_NUM_THREADS", "").strip() and environ.get(MEASURED_VARIABLE) != environ["OMP_NUM_THREADS"]:
            return None  # the user's (one this function set, inherited from a parent process, is measured again)
        else:
            threads = free_cores()
            _Governor.enabled, _Governor.last, _Governor.threads = True, None, max(1, int(threads))
    threads = max(1, int(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        environ["OMP_NUM_THREADS"] = environ[MEASURED_VARIABLE] = str(threads)
    if "SimpleITK" in sys.modules:  # ITK's own thread pool (registration, resampling)
        sys.modules["SimpleITK"].ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    else:
        environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    return threads


__all__ = ["PASSIVE_WAIT", "THREADS_VARIABLE", "available_cores", "configure_threads", "free_cores", "other_load",
           "hold_threads", "prepare_environment", "rebalance"]
