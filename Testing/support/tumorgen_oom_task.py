"""A backend task that runs out of CUDA memory on any device but the CPU (loaded through TUMORGEN_TASK_MODULES).

There is no GPU here, so the device is faked: with ``TUMORGEN_TEST_FAKE_CUDA=1`` in the environment, importing
this module makes :func:`tumorgen.device.resolve_device` answer ``cuda:0`` for ``auto`` and ``cuda`` (and ``cpu``
for ``cpu``) without PyTorch; tests that run the protocol in their own process patch it themselves
(:func:`fake_resolve_device`).

On a device that is not the CPU the task writes a first output and a scratch file, as a real task has by the
time it runs out of memory, and raises the out-of-memory error ``error`` names; on the CPU it writes its output
(the device it ran on, as JSON), or with ``fail_on_cpu`` fails there as well.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from tumorgen import device as device_module
from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task

#: Environment variable that makes the device resolve to a (fake) CUDA device.
FAKE_CUDA_ENV = "TUMORGEN_TEST_FAKE_CUDA"
#: What PyTorch 2 says when CUDA runs out of memory (the start of it).
OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
               "1.12 GiB is free. Of the allocated memory 75.20 GiB is allocated by PyTorch")


class OutOfMemoryError(RuntimeError):
    """Named like ``torch.cuda.OutOfMemoryError``, which the protocol recognises by name when PyTorch is not loaded."""


def fake_resolve_device(requested: str = "auto") -> str:
    """``resolve_device`` on a machine with one GPU, without PyTorch: ``cpu`` for ``cpu``, else ``cuda:0``."""
    return "cpu" if requested == "cpu" else "cuda:0"


@dataclass
class OomParams:
    #: How the out-of-memory error looks: ``class`` (an OutOfMemoryError) or ``message`` (a RuntimeError that says so).
    error: str = "class"
    #: Fail on the CPU too (with an error of the kind ``error`` names).
    fail_on_cpu: bool = False


def _out_of_memory(kind: str) -> Exception:
    return OutOfMemoryError(OOM_MESSAGE) if kind == "class" else RuntimeError(OOM_MESSAGE)


@register_task("test_oom", summary="Runs out of CUDA memory on a GPU; writes its output on the CPU.", params=OomParams)
def run_oom(ctx: TaskContext) -> None:
    p: OomParams = ctx.params
    device = str(ctx.device)
    ctx.log(f"running on {device}; torch loaded: {'torch' in sys.modules}")
    ctx.progress("work", 0.3, "allocating")
    if device != "cpu" or p.fail_on_cpu:
        ctx.output_path("partial", "partial.json").write_text('{"half": ')
        (ctx.staging_dir / "scratch.bin").write_bytes(b"\0" * 64)
        raise _out_of_memory(p.error)
    ctx.output_path("result", "result.json").write_text(json.dumps({"device": device}) + "\n")


if os.environ.get(FAKE_CUDA_ENV) == "1":
    device_module.resolve_device = fake_resolve_device
