"""The ``simulate`` task: one simulated subject (see :mod:`tumorgen.simulate`) as backend outputs.

Outputs (BraTS 2023+ names, ``<case>-<name>.nii.gz``): ``t1n``, ``t1c``,
``t2w``, ``t2f``, ``seg``, ``concentration`` and ``tissue-csf/gm/wm``. With the
default parameters this is the bundled sample the demo and the GUI open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task

#: The bundled sample: subject (SAMPLE_SEED, 0) at 1 mm.
SAMPLE_SEED = 0
SAMPLE_CASE = "TGSIM-sample"


@dataclass
class SimulateTaskParams:
    seed: int = SAMPLE_SEED
    spacing_mm: float = 1.0
    tumor: bool = True
    volume_low_cm3: float = 8.0
    volume_high_cm3: float = 60.0
    mass_effect: float = 0.5
    case: str = SAMPLE_CASE


@register_task(
    "simulate",
    requires=("scipy", "nilearn", "PIL"),
    optional_requires=("torch",),
    summary="Simulate a subject from the MNI152 template: anatomy, tumor with mass effect, four contrasts, labels.",
    params=SimulateTaskParams,
)
def run_simulate(ctx: TaskContext) -> None:
    from tumorgen.errors import InputError
    from tumorgen.simulate import SimulationOptions, simulate_subject
    from tumorgen.simulate.writer import SUFFIXES

    p: SimulateTaskParams = ctx.params
    if not p.case or "/" in p.case or p.case.startswith("."):
        raise InputError(f"case must be a plain name, got {p.case!r}")
    options = SimulationOptions(spacing_mm=p.spacing_mm, tumor=p.tumor, volume_cm3=(p.volume_low_cm3, p.volume_high_cm3), mass_effect=p.mass_effect)

    def progress(fraction: float, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress("simulate", 0.9 * fraction, message)

    subject = simulate_subject([p.seed, 0], options, case=p.case, progress=progress)
    ctx.log(f"{p.case}: regions {subject.info['regions_cm3']} cm³")
    volumes = subject.volumes()
    for n, name in enumerate(SUFFIXES):
        ctx.progress("write", 0.9 + 0.1 * n / len(SUFFIXES), f"writing {name}")
        ctx.write_volume(name, volumes[name], f"{p.case}-{name}.nii.gz", dtype=np.uint8 if name == "seg" else np.float32)
