"""Simulated subjects: MNI152 anatomy, a Fisher–Kolmogorov tumor with mass effect, four contrasts.

A subject is built in stages, each deterministic from the subject's seed:

1. **Anatomy.** The MNI152 tissue maps (:func:`tumorgen.anatomy.template.load_mni152`),
   on a grid of ``spacing_mm``, warped by a random diffeomorphism
   (:func:`~tumorgen.simulate.deformation.random_diffeomorphism`).
2. **Tumor.** A Fisher–Kolmogorov field grown from a random deep white-matter
   seed to a random volume, with random D_w and ρ.
3. **Mass effect.** A radial push away from the tumor's centre that displaces
   tissue amounting to ``mass_effect`` × the tumor's volume (so in proportion
   to it), tapered to zero at the brain's edge; applied to the tissue maps and
   the concentration together.
4. **Labels and contrasts.** BraTS labels from the concentration
   (:mod:`tumorgen.biophysics.labels`); compartment fractions from the same
   thresholds, softened over ±``softness`` in c; the four contrasts by
   :func:`tumorgen.simulate.contrasts.render`.

:func:`postoperative` turns a subject into its post-operative state and
:func:`time_series` follows it over time. Only MNI152-derived data is used.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt

from tumorgen.anatomy.tissues import TISSUE_NAMES, TissueMaps
from tumorgen.biophysics.labels import LabelThresholds, concentration_to_labels
from tumorgen.errors import InputError
from tumorgen.simulate.contrasts import CONTRASTS, ImagingOptions, render
from tumorgen.simulate.deformation import compose_fields, jacobian_determinant, radial_field, random_diffeomorphism, support_box, warp
from tumorgen.volume import Grid, Volume

ProgressFn = Callable[[float, str], None]
#: BraTS 2024 post-treatment label of a resection cavity.
CAVITY_LABEL = 4


@dataclass(frozen=True)
class SimulationOptions:
    #: Isotropic voxel size of the subject, mm (1.0 = the template's own grid).
    spacing_mm: float = 1.0
    #: Warp the template by a random diffeomorphism (False: the template's own anatomy).
    deform: bool = True
    #: RMS size of the random non-linear deformation, mm.
    deform_mm: float = 4.0
    #: RMS size of a fine deformation (σ :attr:`fold_smoothness_mm`) on top, mm: it moves gyri and sulci
    #: against each other, so the anatomy differs from the template's at the scale of the folding (0: none).
    fold_mm: float = 0.0
    fold_smoothness_mm: float = 4.0
    #: Grow a tumor (False: a healthy subject).
    tumor: bool = True
    #: Range of the target tumor volume (c ≥ 0.25), cm³.
    volume_cm3: tuple[float, float] = (8.0, 60.0)
    #: Ranges of white-matter diffusivity (mm²/day) and proliferation rate (1/day).
    d_white: tuple[float, float] = (0.1, 0.8)
    rho: tuple[float, float] = (0.08, 0.25)
    #: Mass effect: the tissue pushed away from the tumor amounts to this fraction of the tumor's volume.
    mass_effect: float = 0.5
    #: Seeds are at least this deep inside white matter, mm.
    seed_depth_mm: float = 12.0
    #: Width (in c) over which the compartments blend at each label threshold.
    softness: float = 0.04
    labels: LabelThresholds = LabelThresholds()
    imaging: ImagingOptions = ImagingOptions()
    #: Also render the subject's healthy anatomy (before the tumor and its mass effect) with the same imaging draws
    #: (jitter, bias field, noise): ``t1n-healthy`` ... ``t2f-healthy``, the pairs that label-map synthesis trains on.
    healthy_reference: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spacing_mm) and 0.5 <= self.spacing_mm <= 8.0):
            raise InputError(f"spacing must be between 0.5 and 8 mm, got {self.spacing_mm}")
        if not (math.isfinite(self.fold_mm) and 0.0 <= self.fold_mm <= 5.0):
            raise InputError(f"fold size must be between 0 and 5 mm, got {self.fold_mm}")
        if not (math.isfinite(self.fold_smoothness_mm) and 1.0 <= self.fold_smoothness_mm <= 20.0):
            raise InputError(f"fold smoothness must be between 1 and 20 mm, got {self.fold_smoothness_mm}")
        for name in ("volume_cm3", "d_white", "rho"):
            lo, hi = getattr(self, name)
            if not (0 < lo <= hi):
                raise InputError(f"{name} range must satisfy 0 < low <= high, got ({lo}, {hi})")


@dataclass
class SimulatedSubject:
    """One simulated scan: contrasts, labels, concentration, tissue maps, and how they were made."""

    case: str
    images: dict[str, Volume]
    seg: Volume
    concentration: Volume
    tissues: TissueMaps
    info: dict
    #: The subject's anatomy before the tumor's mass effect, and the tumor on it (for post-op and series).
    anatomy: TissueMaps = field(repr=False)
    growth_field: Volume = field(repr=False)
    #: The contrasts without noise (``<contrast>-noisefree``), when :attr:`ImagingOptions.reference` asked for them.
    references: dict[str, Volume] = field(default_factory=dict, repr=False)

    @property
    def grid(self) -> Grid:
        return self.seg.grid

    def volumes(self) -> dict[str, Volume]:
        """Every volume of the case by its file suffix: t1n, t1c, t2w, t2f, seg, concentration, tissue-csf/gm/wm (and any noise-free references)."""
        return {**self.images, "seg": self.seg, "concentration": self.concentration,
                **{f"tissue-{n}": getattr(self.tissues, n) for n in TISSUE_NAMES}, **self.references}


# ----------------------------------------------------------------------------- stages


def spawn_rngs(seed: int | Sequence[int], n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (an int or a sequence such as ``[run seed, subject index]``)."""
    sequence = np.random.SeedSequence(seed)
    return [np.random.default_rng(child) for child in sequence.spawn(n)]


def subject_grid(spacing_mm: float) -> Grid:
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.resample import working_grid

    grid = load_mni152().t1.grid
    return grid if spacing_mm == 1.0 else working_grid(grid, spacing_mm)


def subject_anatomy(rng: np.random.Generator, options: SimulationOptions) -> tuple[TissueMaps, float]:
    """The template's tissue maps on the subject grid, randomly deformed; also the deformation's smallest Jacobian."""
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.resample import resample

    template = load_mni152().tissues
    grid = subject_grid(options.spacing_mm)
    maps = [getattr(template, n) for n in TISSUE_NAMES]
    if options.spacing_mm != 1.0:
        maps = [resample(m, grid) for m in maps]
    if not options.deform:
        return TissueMaps(*(m.with_array(np.array(m.array, dtype=np.float32)) for m in maps)), 1.0
    u = random_diffeomorphism(grid, rng, displacement_mm=options.deform_mm)
    if options.fold_mm > 0:  # drawn after the coarse field, so a subject without folds is what it always was
        fine = random_diffeomorphism(grid, rng, displacement_mm=options.fold_mm, smoothness_mm=options.fold_smoothness_mm,
                                     scale=0.0, rotation_deg=0.0, coarse_mm=min(2.0, options.fold_smoothness_mm / 2))
        u = compose_fields(u, fine).astype(np.float32)  # the fine field first, then the coarse one
    # only the brain's bounding box (plus the largest displacement) can receive tissue
    reach = int(np.ceil(np.abs(u).max())) + 2
    idx = np.nonzero(sum(m.array for m in maps) > 0)
    box = tuple(slice(max(0, int(i.min()) - reach), min(n, int(i.max()) + 1 + reach)) for i, n in zip(idx, grid.size))
    min_jacobian = float(jacobian_determinant(u[(slice(None), *box)]).min())
    warped = warp(maps, u, box=box)
    return TissueMaps(*(w.with_array(np.clip(w.array, 0.0, 1.0)) for w in warped)), min_jacobian


def seed_voxel(tissues: TissueMaps, rng: np.random.Generator, depth_mm: float) -> tuple[int, int, int]:
    """A random voxel deep inside white matter (at least ``depth_mm`` from anything else, relaxed if needed)."""
    wm = tissues.wm.array > 0.6
    depth = distance_transform_edt(wm, sampling=tissues.grid.spacing)
    for required in (depth_mm, depth_mm / 2, 0.0):
        candidates = np.flatnonzero(depth > required)
        if candidates.size:
            return tuple(int(i) for i in np.unravel_index(rng.choice(candidates), wm.shape))
    raise InputError("the anatomy has no white matter to seed a tumor in")


def grow_tumor(anatomy: TissueMaps, rng: np.random.Generator, options: SimulationOptions, progress: ProgressFn | None = None):
    from tumorgen.biophysics.fk import GrowthParams, grow

    voxel = seed_voxel(anatomy, rng, options.seed_depth_mm)
    target = float(rng.uniform(*options.volume_cm3))
    params = GrowthParams(d_white=float(rng.uniform(*options.d_white)), rho=float(rng.uniform(*options.rho)))
    result = grow(anatomy, params, seed_voxel=voxel, target_volume_cm3=target, threshold=options.labels.edema, backend="numpy", progress=progress)
    info = {
        "seed_voxel": list(voxel),
        "seed_ras_mm": [round(float(v), 2) for v in anatomy.grid.index_to_ras(voxel)],
        "d_white_mm2_per_day": round(params.d_white, 4),
        "rho_per_day": round(params.rho, 4),
        "target_volume_cm3": round(target, 3),
        "growth_days": round(result.days, 2),
    }
    return result.concentration, params, info


def mass_effect(anatomy: TissueMaps, concentration: Volume, fraction: float, *, threshold: float = 0.25, region: np.ndarray | None = None):
    """Push tissue away from the tumor (``fraction`` > 0) or pull it into a region (< 0); returns warped maps, concentration, info.

    The displaced volume is ``fraction`` × the region's volume (default region:
    c ≥ ``threshold``), so the push is proportional to the tumor's volume: a
    radial map about the region's centre (:func:`radial_field`) of strength
    ``1 − (1 + fraction)^(−1/3)`` and width 1.2 × the region's equivalent radius
    + 4 mm, tapered to zero at the brain's edge.
    """
    grid = anatomy.grid
    region = concentration.array >= threshold if region is None else region
    volume_cm3 = float(np.count_nonzero(region)) * grid.voxel_volume_mm3 / 1000.0
    if volume_cm3 == 0 or fraction == 0:
        return anatomy, concentration, {"mass_effect_mm": 0.0, "min_jacobian": 1.0}
    centre = np.array([float(np.mean(i)) for i in np.nonzero(region)])
    radius = (3.0 * volume_cm3 * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    strength = 1.0 - (1.0 + fraction) ** (-1.0 / 3.0)
    brain = anatomy.brain_mask().array
    u = radial_field(grid, centre, strength=strength, sigma_mm=1.2 * radius + 4.0, confine=brain)
    box = support_box(u)
    warped = warp([*(getattr(anatomy, n) for n in TISSUE_NAMES), concentration], u, box=box)
    local = u[(slice(None), *box)]
    min_j = float(jacobian_determinant(local).min()) if local.size else 1.0
    largest = float(np.sqrt(np.max(np.sum((local * np.asarray(grid.spacing)[:, None, None, None]) ** 2, axis=0)))) if local.size else 0.0
    maps = TissueMaps(*(w.with_array(np.clip(w.array, 0.0, 1.0)) for w in warped[:3]))
    conc = warped[3].with_array(np.clip(warped[3].array, 0.0, 1.0))
    return maps, conc, {"mass_effect_mm": round(largest, 3), "min_jacobian": round(min_j, 4), "u": u, "box": box}


def _smoothstep(c: np.ndarray, threshold: float, width: float) -> np.ndarray:
    x = np.clip((c - (threshold - width / 2)) / max(width, 1e-6), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


def tumor_fractions(c: np.ndarray, thresholds: LabelThresholds, softness: float) -> dict[str, np.ndarray]:
    """Oedema / enhancing / necrosis fractions from the concentration, blended around the label thresholds."""
    any_tumor = _smoothstep(c, thresholds.edema, softness)
    core = np.minimum(_smoothstep(c, thresholds.core, softness), any_tumor)
    necrosis = np.minimum(_smoothstep(c, thresholds.necrosis, softness / 2), core) if thresholds.necrosis is not None else np.zeros_like(core)
    return {"edema": any_tumor - core, "enhancing": core - necrosis, "necrosis": necrosis}


def _render_subject(case: str, tissues: TissueMaps, lesions: dict[str, np.ndarray], seg: np.ndarray, concentration: Volume,
                    rng: np.random.Generator, options: SimulationOptions, info: dict, anatomy: TissueMaps, growth_field: Volume) -> SimulatedSubject:
    healthy_rng = copy.deepcopy(rng) if options.healthy_reference else None
    arrays = render(tissues.arrays(), lesions, rng, options.imaging)
    ref = tissues.csf
    images = {name: ref.with_array(arrays[name]) for name in CONTRASTS}
    references = {name: ref.with_array(arrays[name]) for name in arrays if name not in images}
    if healthy_rng is not None:
        healthy = render(anatomy.arrays(), {}, healthy_rng, dataclasses.replace(options.imaging, reference=False))
        references.update({f"{name}-healthy": ref.with_array(healthy[name]) for name in CONTRASTS})
    return SimulatedSubject(case, images, ref.with_array(seg.astype(np.uint8)), concentration, tissues, info, anatomy, growth_field,
                            references)


def _region_volumes(seg: np.ndarray, grid: Grid) -> dict[str, float]:
    cm3 = grid.voxel_volume_mm3 / 1000.0
    return {name: round(float(np.count_nonzero(seg == value)) * cm3, 3) for name, value in (("necrotic", 1), ("edema", 2), ("enhancing", 3), ("cavity", 4))}


# ----------------------------------------------------------------------------- subjects


def simulate_subject(seed: int | Sequence[int], options: SimulationOptions = SimulationOptions(), *, case: str | None = None,
                     progress: ProgressFn | None = None) -> SimulatedSubject:
    """One pre-operative subject, deterministic from ``seed``."""
    r_anatomy, r_tumor, r_imaging = spawn_rngs(seed, 3)
    report = progress or (lambda f, m: None)
    report(0.0, "anatomy")
    anatomy, min_j = subject_anatomy(r_anatomy, options)
    grid = anatomy.grid
    info: dict = {"seed": list(np.atleast_1d(seed).tolist()), "spacing_mm": options.spacing_mm, "deformation_min_jacobian": round(min_j, 4),
                  "deform_mm": options.deform_mm if options.deform else 0.0, "fold_mm": options.fold_mm,
                  "imaging": {"bias": round(options.imaging.bias, 4), "noise": round(options.imaging.noise, 4),
                              "jitter": round(options.imaging.jitter, 4)}}
    if options.tumor:
        report(0.25, "growing the tumor")
        c0, _, tumor_info = grow_tumor(anatomy, r_tumor, options, progress=lambda f, m: report(0.25 + 0.4 * f, m))
        info.update(tumor_info)
        report(0.65, "mass effect")
        tissues, conc, me = mass_effect(anatomy, c0, options.mass_effect, threshold=options.labels.edema)
        info["mass_effect_mm"], info["mass_effect_min_jacobian"] = me["mass_effect_mm"], me["min_jacobian"]
    else:
        c0 = Volume(np.zeros(grid.size, np.float32), grid)
        tissues, conc = anatomy, c0
    seg = concentration_to_labels(conc, options.labels).array
    lesions = tumor_fractions(conc.array, options.labels, options.softness) if options.tumor else {}
    info["regions_cm3"] = _region_volumes(seg, grid)
    report(0.75, "contrasts")
    subject = _render_subject(case or "subject", tissues, lesions, seg, conc, r_imaging, options, info, anatomy, c0)
    report(1.0, "done")
    return subject


def auto_resection_box(subject: SimulatedSubject, rng: np.random.Generator, *, extent: float = 1.0) -> tuple[list[float], list[float]]:
    """A RAS box (centre, size mm) around the tumor core, ``extent`` × the core's bounding box (jittered by ±10 %)."""
    core = np.isin(subject.seg.array, (1, 3))
    if not core.any():
        raise InputError("the subject has no tumor core to resect")
    idx = np.array(np.nonzero(core))
    lo, hi = idx.min(axis=1), idx.max(axis=1)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])], dtype=float)
    ras = np.array([subject.grid.index_to_ras(p) for p in corners])
    centre = ras.mean(axis=0)
    size = (ras.max(axis=0) - ras.min(axis=0) + np.asarray(subject.grid.spacing)) * extent * rng.uniform(0.9, 1.1, 3)
    return [float(v) for v in centre], [float(v) for v in size]


def postoperative(subject: SimulatedSubject, box_centre_ras: Sequence[float], box_size_mm: Sequence[float], *, margin_mm: float = 3.0,
                  shift: float = 0.15,
                  seed: int | Sequence[int] = 0, options: SimulationOptions = SimulationOptions(), case: str | None = None,
                  box_orientation: Sequence[float] | None = None) -> SimulatedSubject:
    """The subject after resecting the tumor core inside a box.

    The cavity is the box ∩ the tumor core dilated by ``margin_mm``. It gets
    CSF-like signal and label 4; a thin blood-product rim (1.5 mm) lines it;
    post-operative oedema (label 2 where strong) surrounds it; the tissue around
    it shifts into it by ``shift`` × the cavity's volume; infiltration outside the box stays.
    """
    from tumorgen.biophysics.edit import box_mask

    r_imaging, _ = spawn_rngs(seed, 2)
    grid = subject.grid
    spacing = np.asarray(grid.spacing)
    box = box_mask(grid, box_centre_ras, box_size_mm, box_orientation).array
    core = np.isin(subject.seg.array, (1, 3))
    steps = max(1, int(round(margin_mm / float(spacing.min()))))
    cavity = box & binary_dilation(core, iterations=steps) if margin_mm > 0 else box & core
    if not cavity.any():
        raise InputError("the resection box does not touch the tumor core: nothing would be removed")
    # the tissue shifts a little into the cavity: warp maps, concentration and cavity together
    pulled = mass_effect(subject.tissues, subject.concentration, -shift, region=cavity)
    tissues, conc = pulled[0], pulled[1]
    cavity_f = cavity.astype(np.float32)
    if "u" in pulled[2]:
        cavity_f = warp([Volume(cavity_f, grid)], pulled[2]["u"], box=pulled[2]["box"])[0].array
    cavity_f = np.clip(cavity_f, 0.0, 1.0)
    cavity_mask = cavity_f >= 0.5
    brain = (sum(tissues.arrays()) + cavity_f) > 0.5
    outside = distance_transform_edt(~cavity_mask, sampling=spacing)
    rim = np.where(brain & ~cavity_mask & (outside <= 1.5), 0.7, 0.0).astype(np.float32)
    postop_edema = np.where(brain & ~cavity_mask, 0.8 * np.exp(-np.maximum(outside - 1.5, 0.0) / 4.0), 0.0).astype(np.float32)
    postop_edema[outside > 12.0] = 0.0
    c = conc.array * (1.0 - cavity_f)
    fractions = tumor_fractions(c, options.labels, options.softness)
    free = 1.0 - cavity_f
    rim = np.minimum(rim, free)
    free = free - rim
    for name in fractions:
        fractions[name] = fractions[name] * free
    taken = sum(fractions.values())
    fractions["edema"] = fractions["edema"] + np.clip(np.minimum(postop_edema, free - taken), 0.0, None)
    lesions = {**fractions, "cavity": cavity_f, "blood": rim}
    seg = concentration_to_labels(conc.with_array(c), options.labels).array
    seg[(seg == 0) & (postop_edema >= 0.3)] = 2
    seg[cavity_mask] = CAVITY_LABEL
    info = dict(subject.info)
    info.update({
        "state": "post-operative",
        "resection_box": {"centre_ras_mm": [round(float(v), 2) for v in box_centre_ras], "size_mm": [round(float(v), 2) for v in box_size_mm]},
        "margin_mm": margin_mm,
        "cavity_shift_mm": pulled[2]["mass_effect_mm"],
        "regions_cm3": _region_volumes(seg, grid),
    })
    return _render_subject(case or subject.case + "-postop", tissues, lesions, seg, conc.with_array(c), r_imaging, options, info,
                           subject.anatomy, subject.growth_field)


def time_series(subject: SimulatedSubject, days: Sequence[float], *, rt_start: float | None = None, alpha: float = 0.7,
                tau: float = 10.0, k: float = 0.05, seed: int | Sequence[int] = 0, options: SimulationOptions = SimulationOptions(),
                progress: ProgressFn | None = None) -> list[SimulatedSubject]:
    """The subject at later days (day 0 is the subject itself), the tumor advanced by the growth solver.

    With ``rt_start`` the radiotherapy response follows the growth ODE
    (:mod:`tumorgen.biophysics.growth_ode`): at the start a fraction ``alpha`` of
    the concentration is lethally damaged and, after ``tau`` days, clears at
    rate ``k``; the rest keeps growing by the Fisher–Kolmogorov model.
    """
    from tumorgen.biophysics.fk import GrowthParams, grow

    days = [float(d) for d in days]
    if not days or days[0] < 0 or any(b <= a for a, b in zip(days, days[1:])):
        raise InputError(f"series days must be >= 0 and strictly increasing, got {days}")
    if not 0.0 <= alpha <= 1.0 or tau < 0 or k <= 0:
        raise InputError(f"radiotherapy response needs 0 <= alpha <= 1, tau >= 0 and k > 0, got {alpha}, {tau}, {k}")
    if "d_white_mm2_per_day" not in subject.info:
        raise InputError("the subject has no tumor to follow")
    params = GrowthParams(d_white=subject.info["d_white_mm2_per_day"], rho=subject.info["rho_per_day"])
    anatomy = subject.anatomy
    living = subject.growth_field.array.astype(np.float32)
    dying = np.zeros_like(living)
    dying_at_rt = None
    now = 0.0
    out = []
    rngs = spawn_rngs(seed, len(days))
    for n, day in enumerate(days):
        # advance the living compartment to `day`, splitting at the radiotherapy start
        stops = [d for d in (rt_start,) if d is not None and now < d <= day] + [day]
        for stop in stops:
            if stop > now and living.any():
                living = grow(anatomy, params, initial=anatomy.csf.with_array(living), days=stop - now, backend="numpy").concentration.array
            now = stop
            if rt_start is not None and stop == rt_start and dying_at_rt is None:
                dying_at_rt = alpha * living
                living = (1.0 - alpha) * living
        if dying_at_rt is not None:
            dying = dying_at_rt * math.exp(-k * max(0.0, now - rt_start - tau))
        total = np.clip(living + dying, 0.0, 1.0)
        field_volume = anatomy.csf.with_array(total.astype(np.float32))
        tissues, conc, me = mass_effect(anatomy, field_volume, options.mass_effect, threshold=options.labels.edema)
        seg = concentration_to_labels(conc, options.labels).array
        info = dict(subject.info)
        info.update({"state": "follow-up", "day": day, "rt_start": rt_start, "rt_alpha": alpha if rt_start is not None else None,
                     "mass_effect_mm": me["mass_effect_mm"], "regions_cm3": _region_volumes(seg, anatomy.grid),
                     "tumor_volume_cm3": round(float(np.count_nonzero(total >= options.labels.edema)) * anatomy.grid.voxel_volume_mm3 / 1000, 3)})
        lesions = tumor_fractions(conc.array, options.labels, options.softness)
        out.append(_render_subject(f"{subject.case}-day{int(round(day)):04d}", tissues, lesions, seg, conc, rngs[n], options, info,
                                   anatomy, field_volume))
        if progress:
            progress((n + 1) / len(days), f"time point {n + 1}/{len(days)} (day {day:g})")
    return out


__all__ = [
    "CAVITY_LABEL", "SimulatedSubject", "SimulationOptions", "auto_resection_box", "mass_effect", "postoperative",
    "simulate_subject", "subject_anatomy", "time_series", "tumor_fractions",
]
