"""``tumorgen.gpu_info``: the GPUs ``nvidia-smi`` reports, read without PyTorch, here and through the probe snippet.

``nvidia-smi`` itself is a shell script on a private PATH that prints what the real one prints on such machines.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tumorgen import gpu_info
from tumorgen.errors import InputError
from tumorgen.gpu_info import (GPU_QUERY_COMMAND, PROBE_SNIPPET, GpuInfo, detect_gpus, gpus_from_probe_json, has_nvidia_driver,
                               parse_nvidia_smi, summary)

#: What ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` prints on one H100 (the trailing newline included).
ONE_H100 = "0, NVIDIA H100 80GB HBM3, 81559, 81004, 550.54.15\n"
#: Two unlike cards, the way the driver pads them.
TWO_GPUS = ("0, NVIDIA GeForce RTX 4090, 24564, 23861, 560.35.03\n"
            "1, NVIDIA RTX A2000 12GB, 12282, 11950, 560.35.03\n")
H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 81004, "550.54.15")
RTX_4090 = GpuInfo(0, "NVIDIA GeForce RTX 4090", 24564, 23861, "560.35.03")
RTX_A2000 = GpuInfo(1, "NVIDIA RTX A2000 12GB", 12282, 11950, "560.35.03")

posix_only = pytest.mark.skipif(os.name != "posix", reason="the stand-in nvidia-smi is a shell script")


def test_parse_one_gpu():
    assert parse_nvidia_smi(ONE_H100) == [H100]


def test_parse_two_gpus_with_blank_lines_and_extra_spaces():
    padded = "\n  0 ,  NVIDIA GeForce RTX 4090 ,24564,   23861 , 560.35.03  \r\n\n" + TWO_GPUS.splitlines()[1] + "\n\n"
    assert parse_nvidia_smi(TWO_GPUS) == [RTX_4090, RTX_A2000]
    assert parse_nvidia_smi(padded) == [RTX_4090, RTX_A2000]


def test_parse_no_gpu():
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found\n") == []


def test_garbled_lines_are_skipped_and_the_gpus_around_them_kept():
    text = ("Failed to initialize NVML: Driver/library version mismatch\n"
            "0, NVIDIA H100 80GB HBM3, 81559, 81004, 550.54.15\n"
            "1, NVIDIA H100 80GB HB\n"  # cut off
            "x, NVIDIA H100 80GB HBM3, 81559, 81004, 550.54.15\n"  # no index
            "2, NVIDIA H100 80GB HBM3, lots, 81004, 550.54.15\n")  # memory not a number
    assert parse_nvidia_smi(text) == [H100]


def test_not_reported_values_read_as_zero_memory_and_no_driver():
    gpus = parse_nvidia_smi("0, NVIDIA GB10, [N/A], [N/A], 580.95.05\n1, NVIDIA A100-SXM4-40GB, 40960, [Not Supported], [N/A]\n")
    assert gpus == [GpuInfo(0, "NVIDIA GB10", 0, 0, "580.95.05"), GpuInfo(1, "NVIDIA A100-SXM4-40GB", 40960, 0, "")]
    assert gpus[0].describe() == "NVIDIA GB10, memory not reported"
    assert gpus[1].describe() == "NVIDIA A100-SXM4-40GB, 0.0 GiB free of 40.0 GiB"


def test_a_name_with_a_comma_keeps_it():
    assert parse_nvidia_smi("3, Tesla K80, rev 2, 11441, 11300, 470.82.01\n") == [GpuInfo(3, "Tesla K80, rev 2", 11441, 11300, "470.82.01")]


def test_describe_and_summary():
    assert H100.describe() == "NVIDIA H100 80GB HBM3, 79.1 GiB free of 79.6 GiB"
    assert summary([]) == "no NVIDIA GPU found"
    assert summary([H100]) == "NVIDIA H100 80GB HBM3, 79.1 GiB free of 79.6 GiB"
    assert summary([RTX_4090, RTX_A2000]) == ("2 GPUs: #0 NVIDIA GeForce RTX 4090, 23.3 GiB free of 24.0 GiB; "
                                              "#1 NVIDIA RTX A2000 12GB, 11.7 GiB free of 12.0 GiB")


def test_the_query_command():
    assert GPU_QUERY_COMMAND == ["nvidia-smi", "--query-gpu=index,name,memory.total,memory.free,driver_version",
                                 "--format=csv,noheader,nounits"]


# -- a stand-in nvidia-smi on the PATH -----------------------------------------------------------------------------
def _fake_smi(folder: Path, body: str) -> Path:
    """An executable ``nvidia-smi`` in ``folder`` that records its arguments in ``args.txt`` and runs ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "$@" > "{folder / "args.txt"}"\n{body}\n')
    script.chmod(0o755)
    return folder


def _printing(text: str) -> str:
    """A shell command that prints ``text`` with builtins only (the private PATH has nothing else)."""
    return "printf '%s\\n' " + " ".join(f"'{line}'" for line in text.rstrip("\n").split("\n"))


@posix_only
def test_detect_gpus_runs_the_query(tmp_path, monkeypatch):
    folder = _fake_smi(tmp_path / "bin", _printing(TWO_GPUS))
    monkeypatch.setenv("PATH", str(folder))
    assert detect_gpus() == [RTX_4090, RTX_A2000]
    assert (folder / "args.txt").read_text().split() == GPU_QUERY_COMMAND[1:]
    assert has_nvidia_driver() is True


@posix_only
def test_detect_gpus_is_empty_when_nvidia_smi_fails_or_hangs(tmp_path, monkeypatch):
    failing = _fake_smi(tmp_path / "failing", "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9")
    monkeypatch.setenv("PATH", str(failing))
    assert detect_gpus() == []
    hanging = _fake_smi(tmp_path / "hanging", f"exec {shutil.which('sleep')} 30")
    monkeypatch.setenv("PATH", str(hanging))
    start = time.monotonic()
    assert detect_gpus(timeout=0.3) == []
    assert time.monotonic() - start < 10


def test_detect_gpus_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == []


def test_has_nvidia_driver_without_nvidia_smi_looks_at_the_kernel_driver(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    version = tmp_path / "version"
    monkeypatch.setattr(gpu_info, "_LINUX_DRIVER_FILE", str(version))
    assert has_nvidia_driver() is False
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n")
    assert has_nvidia_driver() is True
    monkeypatch.setattr(sys, "platform", "win32")  # no /proc there
    assert has_nvidia_driver() is False


# -- the probe snippet, in another interpreter ------------------------------------------------------------------------
def _run_probe(path: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages, no user site, no PYTHONPATH: only the standard library is importable.
    return subprocess.run([sys.executable, "-I", "-S", "-c", PROBE_SNIPPET], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})


@posix_only
@pytest.mark.parametrize("output, expected", [(ONE_H100, [H100]), (TWO_GPUS, [RTX_4090, RTX_A2000]),
                                              ("No devices were found\n", [])])
def test_the_probe_snippet_reports_what_nvidia_smi_reports(tmp_path, output, expected):
    folder = _fake_smi(tmp_path / "bin", _printing(output))
    proc = _run_probe(str(folder))
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert gpus_from_probe_json(lines[0]) == expected
    assert (folder / "args.txt").read_text().split() == GPU_QUERY_COMMAND[1:]


@posix_only
def test_the_probe_snippet_passes_numbers_and_leaves_unreported_values_to_the_reader(tmp_path):
    folder = _fake_smi(tmp_path / "bin", _printing(ONE_H100 + "1, NVIDIA GB10, [N/A], [N/A], 580.95.05\ngarbage\n"))
    line = _run_probe(str(folder)).stdout.strip()
    assert line == ('{"gpus": [[0, "NVIDIA H100 80GB HBM3", 81559, 81004, "550.54.15"], '
                    '[1, "NVIDIA GB10", "[N/A]", "[N/A]", "580.95.05"]]}')
    assert gpus_from_probe_json(line) == [H100, GpuInfo(1, "NVIDIA GB10", 0, 0, "580.95.05")]


#: nvidia-smi failing, crashing, and printing bytes that are not text.
BROKEN = ["echo 'NVIDIA-SMI has failed'; exit 3", "kill -SEGV $$", r"printf '0, \377\376 bad, 1, 1, 1\n'"]


@posix_only
@pytest.mark.parametrize("body", BROKEN)
def test_the_probe_snippet_never_raises(tmp_path, body):
    proc = _run_probe(str(_fake_smi(tmp_path / "bin", body)))
    assert proc.returncode == 0 and proc.stdout == '{"gpus": []}\n' and proc.stderr == ""


@posix_only
@pytest.mark.parametrize("body", BROKEN)
def test_detect_gpus_never_raises(tmp_path, monkeypatch, body):
    monkeypatch.setenv("PATH", str(_fake_smi(tmp_path / "bin", body)))
    assert detect_gpus() == []


def test_the_probe_snippet_without_nvidia_smi(tmp_path):
    proc = _run_probe(str(tmp_path))
    assert proc.returncode == 0 and gpus_from_probe_json(proc.stdout) == []


def test_gpus_from_probe_json_rejects_what_is_not_a_probe_line():
    assert gpus_from_probe_json('{"gpus": [[0, "NVIDIA H100 80GB HBM3", 81559, 81004, "550.54.15"], [1, "half"], "x", null]}') == [H100]
    for line, message in [("Traceback (most recent call last):", "GPU probe output is not JSON"),
                          ('{"devices": []}', "GPU probe output has no 'gpus' list"), ("[]", "has no 'gpus' list")]:
        with pytest.raises(InputError) as exc:
            gpus_from_probe_json(line)
        assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_module_and_the_snippet_import_only_the_standard_library():
    def imported(source: str) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
        return names

    module_imports = imported(Path(gpu_info.__file__).read_text()) - {"__future__", "tumorgen"}
    assert module_imports <= set(sys.stdlib_module_names), module_imports
    assert imported(PROBE_SNIPPET) == {"json", "shutil", "subprocess"}
    # tumorgen itself is imported only for its errors, which import nothing else
    code = "import sys, tumorgen.gpu_info; print(sorted(m for m in sys.modules if m.startswith(('tumorgen', 'torch', 'numpy'))))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "['tumorgen', 'tumorgen.errors', 'tumorgen.gpu_info']", proc.stderr
