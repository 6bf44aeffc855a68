"""What a finished check or install of the backend's Python found, in one line for the panel."""

from __future__ import annotations

from dataclasses import dataclass

from tumorgen.errors import InputError
from tumorgen_slicer.backend_install import distribution, pip_error
from tumorgen_slicer.interpreter import read_probe
from tumorgen_slicer.polled_steps import PolledSteps


@dataclass(frozen=True)
class EnvironmentReport:
    """What a finished check or install found.

    ``kind`` is ``check`` or ``install``; ``ok`` is whether the interpreter can run what was asked (a check that
    finds modules missing is not ok, and names them in ``missing``); ``message`` is one line for the status bar.
    """

    kind: str
    ok: bool
    python: str
    python_version: str = ""
    missing: tuple[str, ...] = ()
    message: str = ""
    #: The NVIDIA GPUs the check saw (:class:`tumorgen.gpu_info.GpuInfo`); empty for an install.
    gpus: tuple = ()


def check_report(check: PolledSteps, python: str, *, asked: str = "", unmade: str = "") -> EnvironmentReport:
    """The report of a finished check of ``python``.

    Args:
        check: the finished probe (:func:`~tumorgen_slicer.interpreter.probe_command`).
        python: the backend's interpreter.
        asked: the interpreter the probe ran on, when not ``python`` (the one TumorGen's environment is made from).
        unmade: the folder of TumorGen's environment when it is not made yet (then every module is missing).
    """
    answer = read_probe(asked or python, check.returncode, check.stdout, check.stderr)
    if answer.problem:
        return EnvironmentReport("check", False, python, answer.version, message=answer.problem, gpus=answer.gpus)
    missing = check.modules if unmade else answer.missing
    if missing:
        why = (f"TumorGen's Python environment ({unmade}) is not made yet" if unmade else
               f"backend Python {python} ({answer.version}) lacks {', '.join(missing)}")
        return EnvironmentReport("check", False, python, answer.version, tuple(missing), why, answer.gpus)
    return EnvironmentReport("check", True, python, answer.version, message=f"backend Python {python} ({answer.version}) is ready",
                             gpus=answer.gpus)


def install_report(install: PolledSteps, python: str, detail: str = "") -> EnvironmentReport:
    """The report of a finished install into ``python`` (``detail``: why it failed, when its output does not say)."""
    what = " ".join(map(distribution, install.modules))
    if install.returncode != 0 or detail:
        detail = detail or pip_error(install.stderr + install.stdout) or f"exit code {install.returncode}"
        return EnvironmentReport("install", False, python,
                                 message=str(InputError(f"could not install {what} into {python} ({install.what}): {detail}")))
    return EnvironmentReport("install", True, python, message=f"installed {what} into {python}")
