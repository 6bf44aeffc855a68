"""Which NVIDIA GPUs this machine has, asked of the driver's ``nvidia-smi``, without importing PyTorch.

The Slicer GUI process has no PyTorch, and importing it only to count GPUs
costs seconds; ``nvidia-smi`` answers in milliseconds and also says how much
memory is free. Standard library only: the GUI imports this module, and
:data:`PROBE_SNIPPET` runs the same query inside another interpreter (the
backend's Python), whose answer :func:`gpus_from_probe_json` reads back.

Memory is in MiB as ``nvidia-smi`` reports it (``nounits``); a value the
driver does not report (``[N/A]``, ``[Not Supported]``: integrated or MIG
devices) is 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from tumorgen.errors import InputError

#: The query: one CSV line per GPU, ``index, name, memory.total, memory.free, driver_version`` (MiB, no header, no units).
GPU_QUERY_COMMAND: list[str] = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,memory.free,driver_version",
    "--format=csv,noheader,nounits",
]

#: Where the Linux NVIDIA kernel driver reports its version (present when the driver is loaded).
_LINUX_DRIVER_FILE = "/proc/driver/nvidia/version"
_MIB_PER_GIB = 1024.0


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as ``nvidia-smi`` reports it.

    Args:
        index: the driver's index (what ``CUDA_VISIBLE_DEVICES`` counts, in PCI order).
        name: the product name (``NVIDIA H100 80GB HBM3``).
        total_mib: the memory in MiB (0 when not reported).
        free_mib: the memory free now in MiB (0 when not reported).
        driver: the driver version (empty when not reported).
    """

    index: int
    name: str
    total_mib: int
    free_mib: int
    driver: str

    def describe(self) -> str:
        """One line for a status label: ``NVIDIA H100 80GB HBM3, 79.1 GiB free of 79.6 GiB``.

        Returns:
            The name and the free and total memory in GiB (one decimal), or the name and ``memory not reported``.
        """
        if self.total_mib <= 0:
            return f"{self.name}, memory not reported"
        return f"{self.name}, {self.free_mib / _MIB_PER_GIB:.1f} GiB free of {self.total_mib / _MIB_PER_GIB:.1f} GiB"


def _mib(value: Any) -> int | None:
    """A memory field as whole MiB: 0 for a value the driver does not report (``[N/A]``), None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if value is None:
        return 0
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):  # [N/A], [Not Supported]
        return 0
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number >= 0 else None


def _gpu_from_fields(fields: Sequence[Any]) -> GpuInfo | None:
    """A GPU from its five fields (text as ``nvidia-smi`` wrote it, or numbers), or None for a garbled row."""
    if len(fields) != 5:
        return None
    index_field, name, total_field, free_field, driver = fields
    try:
        index = int(str(index_field).strip())
    except ValueError:
        return None
    total, free = _mib(total_field), _mib(free_field)
    name = "" if name is None else str(name).strip()
    if index < 0 or total is None or free is None or not name:
        return None
    driver = "" if driver is None else str(driver).strip()
    if driver.startswith("[") and driver.endswith("]"):
        driver = ""
    return GpuInfo(index, name, total, free, driver)


def _split_line(line: str) -> list[str]:
    """A CSV line's five fields; a name with commas in it keeps them (the other four fields never have any)."""
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < 5:
        return parts
    return [parts[0], ", ".join(parts[1:-3]), *parts[-3:]]


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Read the output of :data:`GPU_QUERY_COMMAND`.

    Args:
        text: what ``nvidia-smi`` printed: one ``index, name, total, free, driver`` line per GPU.

    Returns:
        The GPUs in the order printed. Blank lines and lines that are not a GPU's (``No devices were found``,
        a driver/library mismatch message, a truncated line) are skipped.
    """
    gpus = []
    for line in text.splitlines():
        if line.strip():
            gpu = _gpu_from_fields(_split_line(line))
            if gpu is not None:
                gpus.append(gpu)
    return gpus


def detect_gpus(timeout: float = 5.0) -> list[GpuInfo]:
    """Ask ``nvidia-smi`` for this machine's GPUs.

    Args:
        timeout: seconds to wait for ``nvidia-smi`` (a hung driver can block it).

    Returns:
        The GPUs; empty when ``nvidia-smi`` is not on the PATH, fails, or does not answer in time.
    """
    executable = shutil.which(GPU_QUERY_COMMAND[0])
    if executable is None:
        return []
    try:
        # CREATE_NO_WINDOW: no console window flashes up over Slicer on Windows (0, no flag, elsewhere)
        proc = subprocess.run([executable, *GPU_QUERY_COMMAND[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    if proc.returncode != 0:
        return []
    return parse_nvidia_smi(proc.stdout)


def has_nvidia_driver() -> bool:
    """Whether the NVIDIA driver seems installed: ``nvidia-smi`` is on the PATH, or (Linux) the kernel driver is loaded.

    Returns:
        True when either sign is there; it says nothing of whether PyTorch can use the GPU.
    """
    if shutil.which(GPU_QUERY_COMMAND[0]) is not None:
        return True
    return sys.platform.startswith("linux") and os.path.exists(_LINUX_DRIVER_FILE)


def summary(gpus: Sequence[GpuInfo]) -> str:
    """One line for a status label.

    Args:
        gpus: what :func:`detect_gpus` or :func:`gpus_from_probe_json` found.

    Returns:
        ``no NVIDIA GPU found``; the one GPU's :meth:`GpuInfo.describe`; or ``2 GPUs: #0 …; #1 …``.
    """
    if not gpus:
        return "no NVIDIA GPU found"
    if len(gpus) == 1:
        return gpus[0].describe()
    return f"{len(gpus)} GPUs: " + "; ".join(f"#{gpu.index} {gpu.describe()}" for gpu in gpus)


# The probe runs in another interpreter, which may not have TumorGen on its path: the snippet carries the query and
# only splits the lines into fields (numbers where a field is all digits); the rules for reading them stay here.
PROBE_SNIPPET: str = f"""\
import json, shutil, subprocess
rows = []
try:
    command = {GPU_QUERY_COMMAND!r}
    executable = shutil.which(command[0])
    if executable is not None:
        proc = subprocess.run([executable] + command[1:], capture_output=True, text=True, timeout=5.0,
                              stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            for line in proc.stdout.splitlines():
                parts = [part.strip() for part in line.split(",")]
                if len(parts) >= 5:
                    fields = [parts[0], ", ".join(parts[1:-3])] + parts[-3:]
                    rows.append([int(f) if i in (0, 2, 3) and f.isdigit() else f for i, f in enumerate(fields)])
except Exception:
    rows = []
print(json.dumps({{"gpus": rows}}), flush=True)
"""
"""Python source, standard library only, that prints one JSON line ``{"gpus": [[index, name, total, free, driver], ...]}``
(MiB; empty without ``nvidia-smi``) and never raises; read the line with :func:`gpus_from_probe_json`."""


def gpus_from_probe_json(line: str) -> list[GpuInfo]:
    """Read the line :data:`PROBE_SNIPPET` printed.

    Args:
        line: the JSON line, ``{"gpus": [[index, name, total_mib, free_mib, driver], ...]}``.

    Returns:
        The GPUs; rows that are not a GPU's are skipped, by the rules of :func:`parse_nvidia_smi`.

    Raises:
        InputError: the line is not a JSON object with a ``gpus`` list.
    """
    try:
        data = json.loads(line)
    except (TypeError, ValueError):
        raise InputError(f"GPU probe output is not JSON: {str(line)[:80]!r}") from None
    rows = data.get("gpus") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise InputError(f"GPU probe output has no 'gpus' list: {str(line)[:80]!r}")
    gpus = []
    for row in rows:
        gpu = _gpu_from_fields(row) if isinstance(row, list) else None
        if gpu is not None:
            gpus.append(gpu)
    return gpus
