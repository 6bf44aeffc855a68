"""Backend tasks that exist only for the tests (loaded through TUMORGEN_TASK_MODULES).

They exercise what real tasks rarely do on purpose: crash, run long, ignore a
cancel, start child processes, print to stdout.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.volume import Volume


@dataclass
class SlowParams:
    steps: int = 50
    step_seconds: float = 0.1
    #: Block in one long sleep instead of stepping: the task never sees the cancel.
    ignore_cancel: bool = False
    #: Start a child process (a sleeping Python) that the cancel must also end.
    spawn_child: bool = False


@register_task("test_slow", summary="Writes part of an output, then runs for a long time.", params=SlowParams)
def run_slow(ctx: TaskContext) -> None:
    p: SlowParams = ctx.params
    ctx.write_volume("first", Volume(np.ones((4, 4, 4), np.float32)))
    partial = ctx.output_path("second", "second.nii.gz")
    partial.write_bytes(b"half-written")
    if p.spawn_child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        ctx.log(f"child pid {child.pid}")
    if p.ignore_cancel:
        ctx.log("sleeping without checking for cancel")
        time.sleep(120)
    for _ in ctx.steps(range(p.steps), "work"):
        time.sleep(p.step_seconds)


@register_task("test_crash", summary="Fails with an internal error half-way.")
def run_crash(ctx: TaskContext) -> None:
    ctx.progress("solve", 0.5, "solving")
    ctx.write_volume("never", Volume(np.zeros((2, 2, 2), np.float32)))
    raise RuntimeError("the solver diverged at step 17")


@register_task("test_print", summary="Prints to stdout (which must not corrupt the event stream).")
def run_print(ctx: TaskContext) -> None:
    print("some library chatter on stdout")
    print('{"type": "result", "outputs": {"fake": "/nowhere"}}')
    ctx.write_volume("ones", Volume(np.ones((3, 3, 3), np.float32)))
