"""The ``grow`` task: a Fisher–Kolmogorov tumor on a subject's tissue maps.

Tissue maps come from, in order of preference: user maps (inputs ``csf``,
``gm``, ``wm``), a tissue label map (``tissue_labels``: 1 CSF, 2 GM, 3 WM),
the subject's T1 (``t1n``, with the template carried across by registration,
optionally ignoring an ``exclude`` mask), or — with none of these — the
bundled MNI152 sample. An ``initial`` field regrows an edited concentration
instead of starting from a seed. Outputs, on the tissue maps' grid:
``concentration`` (float32 in [0, 1]) and ``labels`` (BraTS 1 NCR, 2 ED, 3 ET).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.backend.context import TaskContext
from tumorgen.backend.registry import register_task
from tumorgen.biophysics.fk import GrowthParams, GrowthResult, grow
from tumorgen.biophysics.labels import LabelThresholds, concentration_to_labels
from tumorgen.errors import InputError
from tumorgen.settings import GROWTH
from tumorgen.volume import Volume
from tumorgen.volume_io import read_volume

ProgressFn = Callable[[str, float, str], None]


@dataclass
class GrowTaskParams:
    """The seed and the growth settings (:data:`tumorgen.settings.GROWTH`: defaults, ranges and help live there)."""

    #: Seed point in RAS millimetres (as Slicer shows it), or
    seed_ras: Optional[tuple[float, float, float]] = None
    #: the seed as a voxel index (i, j, k) of the tissue maps' grid.
    seed_voxel: Optional[tuple[int, int, int]] = None
    d_white: float = GROWTH.default("d_white")
    rho: float = GROWTH.default("rho")
    gm_ratio: float = GROWTH.default("gm_ratio")
    #: Stop after ``days`` when set, else when the tumor reaches ``target_volume_cm3``.
    days: Optional[float] = GROWTH.default("days")
    target_volume_cm3: float = GROWTH.default("target_volume_cm3")
    threshold: float = GROWTH.default("threshold")
    edema_threshold: float = GROWTH.default("edema_threshold")
    core_threshold: float = GROWTH.default("core_threshold")
    necrosis_threshold: Optional[float] = GROWTH.default("necrosis_threshold")
    solver: Literal["auto", "numpy", "torch"] = GROWTH.default("solver")

    def __post_init__(self) -> None:
        GROWTH.check(self)
        LabelThresholds(self.edema_threshold, self.core_threshold, self.necrosis_threshold)  # they must increase

    @property
    def growth(self) -> GrowthParams:
        return GrowthParams(d_white=self.d_white, rho=self.rho, gm_ratio=self.gm_ratio)

    @property
    def labels(self) -> LabelThresholds:
        return LabelThresholds(self.edema_threshold, self.core_threshold, self.necrosis_threshold)


#: How :func:`tissues_from_inputs` names maps carried from the template by registration.
REGISTERED = "template registered to the T1"


def tissues_from_inputs(inputs: dict, progress: ProgressFn | None = None, cancelled=None) -> tuple[TissueMaps, str]:
    """Pick the tissue maps for a growth run; returns them and a description of their source."""
    from tumorgen.volume_io import read_mask, read_volume

    maps = [inputs.get(n) for n in ("csf", "gm", "wm")]
    if any(m is not None for m in maps):
        if not all(m is not None for m in maps):
            raise InputError("give all three tissue maps (csf, gm, wm) or none")
        return TissueMaps.read(*maps), "user tissue maps"
    if inputs.get("tissue_labels") is not None:
        return TissueMaps.from_labels(read_volume(inputs["tissue_labels"], role="tissue label map")), "tissue label map"
    if inputs.get("t1n") is not None:
        from tumorgen.anatomy.registration import tissues_for_subject

        t1n = read_volume(inputs["t1n"], role="t1n")
        exclude = read_mask(inputs["exclude"], reference=t1n, reference_name="t1n", role="exclude") if inputs.get("exclude") is not None else None
        return tissues_for_subject(t1n, exclude, progress=progress, cancelled=cancelled), REGISTERED
    from tumorgen.anatomy.template import load_mni152

    return load_mni152().tissues, "bundled MNI152 sample"


def run_growth(
    tissues: TissueMaps,
    p: GrowTaskParams,
    initial: Volume | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancelled=None,
) -> tuple[GrowthResult, Volume]:
    """Grow and label; ``progress(stage, fraction, message)`` gets the growth's progress."""
    if initial is None and p.seed_ras is None and p.seed_voxel is None:
        raise InputError("growth needs a seed (seed_ras or seed_voxel) or an initial concentration field")
    solver = p.solver
    if solver == "auto":
        import importlib.util

        from tumorgen.device import no_cuda_driver

        solver = "numpy"
        # importing PyTorch to ask costs about a second of a command that takes four; without a driver there is no GPU
        if device != "cpu" and not no_cuda_driver() and importlib.util.find_spec("torch") is not None:
            import torch

            solver = "torch" if torch.cuda.is_available() else "numpy"
    result = grow(
        tissues,
        p.growth,
        seed_ras=p.seed_ras if initial is None else None,
        seed_voxel=p.seed_voxel if initial is None and p.seed_ras is None else None,
        initial=initial,
        days=p.days,
        target_volume_cm3=p.target_volume_cm3 if p.days is None else None,
        threshold=p.threshold,
        backend=solver,
        device=None if device == "auto" else device,
        progress=(lambda f, m: progress("grow", f, m)) if progress else None,
        cancelled=cancelled,
    )
    return result, concentration_to_labels(result.concentration, p.labels)


@register_task(
    "grow",
    requires=("scipy", "nilearn"),
    optional_requires=("torch",),
    summary="Grow a Fisher–Kolmogorov tumor from a seed (or regrow an edited field) on tissue maps.",
    optional_inputs=("csf", "gm", "wm", "tissue_labels", "t1n", "exclude", "initial"),
    params=GrowTaskParams,
)
def run_grow(ctx: TaskContext) -> None:
    p: GrowTaskParams = ctx.params
    inputs = {name: ctx.input_path(name) for name in ("csf", "gm", "wm", "tissue_labels", "t1n", "exclude", "initial")}
    ctx.progress("tissues", 0.02, "reading tissue maps")

    def sub(start, end):
        return lambda stage, f, m: ctx.progress(stage, start + (end - start) * f, m)

    has_t1 = inputs["t1n"] is not None and not any(inputs[n] for n in ("csf", "gm", "wm", "tissue_labels"))
    tissues, source = tissues_from_inputs(inputs, progress=sub(0.02, 0.4) if has_t1 else None, cancelled=lambda: ctx.cancelled)
    ctx.log(f"tissue maps: {source}, grid {tissues.grid.size}")
    initial = None
    if inputs["initial"] is not None:
        initial = read_volume(inputs["initial"], role="initial")
        if not initial.grid.matches(tissues.grid):
            raise InputError(f"initial field and tissue maps have different geometry: {'; '.join(tissues.grid.differences(initial.grid))}")
    ctx.check_cancelled()
    result, labels = run_growth(tissues, p, initial, ctx.requested_device, progress=sub(0.4 if has_t1 else 0.05, 0.95), cancelled=lambda: ctx.cancelled)
    ctx.log(f"grew {result.days:.1f} days in {result.steps} steps of {result.dt:.3g} day: {result.volume_cm3:.2f} cm³ with c ≥ {result.threshold:g}")
    ctx.progress("write", 0.96, "writing outputs")
    ctx.write_volume("concentration", result.concentration, "concentration.nii.gz")
    ctx.write_volume("labels", labels, "seg.nii.gz")

