"""The thread settings for a shared machine (tumorgen.threads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tumorgen import threads
from tumorgen.errors import InputError


def test_prepare_environment_sets_short_spinning_and_keeps_what_the_user_set():
    env = {"GOMP_SPINCOUNT": "0"}
    threads.prepare_environment(env)
    assert env == {"GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0", "OPENBLAS_NUM_THREADS": "1"}


def test_free_cores_is_the_available_cores_less_the_busy_ones(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    for load, free in ((0.0, 4), (0.2, 4), (0.3, 3), (1.0, 3), (1.3, 2), (3.9, 1), (9.0, 1)):
        monkeypatch.setattr(threads, "other_load", lambda interval=0.1, load=load: load)
        assert threads.free_cores() == free, load
    monkeypatch.setattr(threads, "other_load", lambda interval=0.1: None)  # unknown: all of them
    assert threads.free_cores() == 4


def test_other_load_is_the_machine_s_busy_time_less_this_process_s(monkeypatch):
    """Over 0.5 s the machine was busy for 1.5 core-seconds, this process for 0.4: others kept 2.2 cores busy."""
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    machine = iter([(1000, 5000), (1000 + int(1.5 * ticks), 5000 + int(2 * ticks))])
    own = iter([os.times_result((1.0, 0.0, 0.0, 0.0, 0.0)), os.times_result((1.3, 0.1, 0.0, 0.0, 0.0))])
    clock = iter([10.0, 10.5])

    class Clock:  # the module's view of time only; pytest's own clock stays real
        monotonic = staticmethod(lambda: next(clock))
        sleep = staticmethod(lambda seconds: None)

    class Os:
        times = staticmethod(lambda: next(own))
        sysconf = staticmethod(os.sysconf)

    monkeypatch.setattr(threads, "_busy_jiffies", lambda: next(machine))
    monkeypatch.setattr(threads, "os", Os)
    monkeypatch.setattr(threads, "time", Clock)
    assert threads.other_load(0.5) == pytest.approx(2.2, abs=0.05)
    monkeypatch.undo()
    monkeypatch.setattr(threads, "_busy_jiffies", lambda: None)  # no /proc/stat
    assert threads.other_load(0.01) is None


def test_other_load_reads_this_machine():
    load = threads.other_load(0.05)
    assert load is None or 0.0 <= load <= threads.available_cores() + 0.5


def test_configure_threads_before_and_after_pytorch_is_imported(monkeypatch):
    env: dict = {}
    monkeypatch.setattr(threads, "free_cores", lambda interval=0.1: 3)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as if PyTorch were not imported yet
    monkeypatch.delitem(sys.modules, "SimpleITK", raising=False)
    assert threads.configure_threads(environ=env) == 3 and env["OMP_NUM_THREADS"] == "3"
    assert env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"
    assert threads.configure_threads(environ={"OMP_NUM_THREADS": "2"}) is None  # the user's choice stands
    inherited = {"OMP_NUM_THREADS": "2", "TUMORGEN_MEASURED_THREADS": "2"}  # set by a parent's measurement
    assert threads.configure_threads(environ=inherited) == 3 and inherited["OMP_NUM_THREADS"] == "3"
    env = {"TUMORGEN_THREADS": "1", "OMP_NUM_THREADS": "2"}
    assert threads.configure_threads(environ=env) == 1 and env["OMP_NUM_THREADS"] == "1"
    for bad in ("0", "two", "-1"):
        with pytest.raises(InputError, match="TUMORGEN_THREADS"):
            threads.configure_threads(environ={"TUMORGEN_THREADS": bad})


def test_configure_threads_sets_pytorch_when_imported():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1, environ={}) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_command_line_loads_numpy_after_the_thread_settings():
    """Importing the command line's module does not import numpy or PyTorch, so main() sets their threads first."""
    code = "import sys, tumorgen.cli.main; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_backend_jobs_get_the_thread_settings():
    from tumorgen.backend.runner import JobRunner

    env = JobRunner(env={"OPENBLAS_NUM_THREADS": "4"}).child_env()
    assert env["GOMP_SPINCOUNT"] == "10000" and env["OPENBLAS_NUM_THREADS"] == "4"


def test_rebalance_follows_the_cores_others_take_while_the_work_runs(monkeypatch):
    """A process starts beside the work: the threads drop to the free core, and come back when it ends."""
    torch = pytest.importorskip("torch")
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    state = {"t": 100.0, "busy": 0, "own": 0.0}
    monkeypatch.setattr(threads, "_reading", lambda: (state["t"], (state["busy"], 0), state["own"]))
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    before = torch.get_num_threads()
    monkeypatch.setattr(threads._Governor, "enabled", False)
    assert threads.rebalance() is None  # off unless configure_threads measured the cores itself
    monkeypatch.setattr(threads._Governor, "enabled", True)
    monkeypatch.setattr(threads._Governor, "last", None)
    monkeypatch.setattr(threads._Governor, "threads", 2)

    def advance(seconds, own_cores, other_cores):
        state["t"] += seconds
        state["own"] += seconds * own_cores
        state["busy"] += int(round(seconds * (own_cores + other_cores) * ticks))

    try:
        assert threads.rebalance() is None  # the first reading
        advance(0.6, 1.3, 0.7)  # another process took most of a core
        assert threads.rebalance() == 1 and torch.get_num_threads() == 1
        advance(0.2, 1.0, 1.0)
        assert threads.rebalance() is None  # within half a second: not measured again
        advance(0.6, 1.0, 1.0)
        assert threads.rebalance() is None  # unchanged
        advance(0.6, 1.0, 0.0)  # it ended
        assert threads.rebalance() == 2 and torch.get_num_threads() == 2
        threads.hold_threads()  # work that set the threads itself
        advance(0.6, 1.0, 1.0)
        assert threads.rebalance() is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
