"""Tissue maps for any T1: register the MNI152 template to the subject and carry its maps.

Pipeline (SimpleITK), template T1 = moving, subject T1 = fixed:

1. **Working images.** Both T1s are resampled to an isotropic working grid
   (:attr:`RegistrationSettings.working_spacing_mm`, 2 mm) and scaled to [0, 1]
   by their 99.5th percentile. The metric mask is the subject's working grid
   minus the ``exclude`` mask (a tumor, a region to inpaint), dilated by
   :attr:`~RegistrationSettings.exclude_margin_mm`: what is in there does not
   look like healthy anatomy and must not pull the template.
2. **Initialisation** by image moments (centres of mass and principal axes).
3. **Affine**: Mattes mutual information, gradient descent with scales from
   physical shifts, two levels (4 mm, 2 mm).
4. **Deformable**: symmetric-forces demons on top of the affine. The template
   is resampled through the affine onto the working grid and histogram-matched
   to the subject; inside the (dilated) exclude mask the subject's intensities
   are replaced by the template's, so the excluded region exerts no force and
   the displacement there is the smooth continuation of its surroundings. Two
   levels (4 mm, 2 mm), the displacement field smoothed with a Gaussian of
   :attr:`~RegistrationSettings.demons_sigma_mm` after every iteration. (A
   B-spline with mutual information was tried first: minutes instead of
   seconds for lower Dice on the benchmark.)
5. **Carry**: the template's CSF/GM/WM maps are resampled through the composite
   transform (affine ∘ displacement) onto the subject's exact grid (linear
   interpolation, so they stay probabilities). When the subject is
   skull-stripped (a zero background), the maps are cut to its foreground.

Results are cached per input: the key is a SHA-256 of the T1's voxels and
geometry, the exclude mask, the settings and the template's identity; the
cache holds the affine and the displacement field on the working grid (a few
MB), so a repeated call re-carries the maps in a few seconds instead of
re-registering. The cache folder is ``$TUMORGEN_CACHE_DIR/tissues`` or
``~/.cache/tumorgen/tissues``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tumorgen.anatomy.tissues import TISSUE_NAMES, TissueMaps
from tumorgen.atomic import replace_dir
from tumorgen.errors import CancelledError, InputError
from tumorgen.volume import Volume

#: Bumped whenever the pipeline changes what it produces, so old cache entries are not reused.
PIPELINE_VERSION = "2"
ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True)
class RegistrationSettings:
    #: Isotropic spacing of the images the metric is computed on, mm.
    working_spacing_mm: float = 2.0
    #: Margin added around ``exclude`` before it is removed from the metric, mm.
    exclude_margin_mm: float = 4.0
    #: Fraction of the mask's voxels sampled by the metric at each iteration.
    sampling: float = 0.2
    #: Mattes mutual-information histogram bins.
    bins: int = 32
    affine_iterations: int = 120
    #: Run the demons stage (False: affine only).
    deformable: bool = True
    #: Standard deviation of the Gaussian that regularises the displacement field, mm.
    demons_sigma_mm: float = 3.0
    #: Demons iterations at 2× the working spacing, then at the working spacing.
    demons_iterations: tuple[int, int] = (50, 30)
    #: Random seed of the metric sampling (the result is deterministic for a given seed).
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("working_spacing_mm", "demons_sigma_mm"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.sampling <= 1.0:
            raise InputError(f"sampling must be in (0, 1], got {self.sampling}")
        if len(self.demons_iterations) != 2 or min(self.demons_iterations) < 0:
            raise InputError(f"demons_iterations must be two counts >= 0, got {self.demons_iterations}")
        if self.exclude_margin_mm < 0:
            raise InputError(f"exclude_margin_mm must be >= 0, got {self.exclude_margin_mm}")


@dataclass(frozen=True)
class Registration:
    """A fitted template → subject mapping and what it took."""

    #: SimpleITK AffineTransform, subject physical point → template point.
    affine: object
    #: Displacement field (SimpleITK vector image on the working grid, mm) applied before the affine, or None.
    displacement: object
    #: Mattes mutual information after the affine stage (lower is better).
    metric_affine: float
    #: Mean squared intensity difference on the working grid, after the affine and after the demons stage.
    mse_affine: float
    mse_final: float
    seconds: float
    cached: bool = False

    @property
    def transform(self):
        """The whole mapping as one SimpleITK CompositeTransform (displacement first, then the affine)."""
        import SimpleITK as sitk

        composite = sitk.CompositeTransform(sitk.AffineTransform(self.affine))
        if self.displacement is not None:
            field = sitk.Cast(self.displacement, sitk.sitkVectorFloat64)
            composite.AddTransform(sitk.DisplacementFieldTransform(field))
        return composite


# ----------------------------------------------------------------------------- public API


def cache_root() -> Path:
    """Where registered transforms are cached."""
    base = os.environ.get("TUMORGEN_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "tumorgen") / "tissues"


def tissues_for_subject(
    t1n: Volume,
    exclude: Volume | None = None,
    *,
    settings: RegistrationSettings = RegistrationSettings(),
    use_cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> TissueMaps:
    """CSF/GM/WM probability maps on ``t1n``'s exact grid, from the registered template.

    Args:
        t1n: the subject's T1 (any grid, oblique included).
        exclude: boolean mask on ``t1n``'s grid kept out of the registration
            metric (tumor, resection cavity, the region to inpaint).
        settings: registration settings (defaults are what the benchmark measures).
        use_cache: reuse / store the transform in the cache (see the module docstring).
        cache_dir: cache folder (default :func:`cache_root`).
        progress: ``progress(stage, fraction, message)``, fraction in [0, 1] over the whole call.
        cancelled: polled at every optimiser iteration; true stops with CancelledError.

    Raises:
        InputError: an empty or constant T1, an exclude mask on another grid or
            covering (almost) the whole image, or a registration that fails.
    """
    registration = register_template(
        t1n, exclude, settings=settings, use_cache=use_cache, cache_dir=cache_dir, progress=progress, cancelled=cancelled
    )
    if progress:
        progress("carry", 0.95, "carrying the tissue maps to the T1")
    maps = carry_tissues(registration.transform, t1n, exclude)
    if progress:
        progress("carry", 1.0, "tissue maps ready")
    return maps


def register_template(
    t1n: Volume,
    exclude: Volume | None = None,
    *,
    settings: RegistrationSettings = RegistrationSettings(),
    use_cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Registration:
    """Register the bundled template's T1 to ``t1n`` (see the module docstring)."""
    _check_inputs(t1n, exclude)
    key = cache_key(t1n, exclude, settings)
    folder = Path(cache_dir) / key if cache_dir is not None else cache_root() / key
    if use_cache:
        hit = _read_cache(folder)
        if hit is not None:
            if progress:
                progress("register", 0.9, "registration found in the cache")
            return hit
    result = _register(t1n, exclude, settings, progress, cancelled)
    if use_cache:
        _write_cache(folder, result, settings)
    return result


def carry_tissues(transform, t1n: Volume, exclude: Volume | None = None) -> TissueMaps:
    """The template's tissue maps resampled through ``transform`` onto ``t1n``'s grid.

    On a skull-stripped scan the maps are cut to its foreground; ``exclude`` (a region voided for inpainting,
    whose zeros are brain, not background) counts as foreground.
    """
    import SimpleITK as sitk

    from tumorgen.anatomy.template import load_mni152

    template = load_mni152()
    stacked = sitk.Compose([getattr(template.tissues, name).to_sitk() for name in TISSUE_NAMES])
    foreground = _skull_stripped_foreground(t1n.array, None if exclude is None else np.asarray(exclude.array).astype(bool))
    # Resampled on the foreground's bounding box only (the maps are cut to the foreground anyway): each voxel's
    # value is the same, and a head's box is about a third of its grid.
    box = tuple(slice(0, n) for n in t1n.grid.size)
    if foreground is not None and foreground.any():
        where = np.argwhere(foreground > 0)
        box = tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(where.min(0), where.max(0)))
    reference = sitk.Image([s.stop - s.start for s in box], sitk.sitkUInt8)
    reference.SetSpacing(t1n.grid.spacing)
    reference.SetOrigin(tuple(float(v) for v in t1n.grid.index_to_lps([s.start for s in box])))
    reference.SetDirection(t1n.grid.direction)
    carried = sitk.Resample(stacked, reference, transform, sitk.sitkLinear, 0.0, stacked.GetPixelID())
    array = sitk.GetArrayViewFromImage(carried)  # [k, j, i, component]
    maps = []
    for c in range(3):
        values = np.clip(array[..., c].transpose(2, 1, 0), 0.0, 1.0).astype(np.float32, copy=False)
        if foreground is not None:
            values = values * foreground[box]
        full = np.zeros(t1n.grid.size, np.float32)
        full[box] = values
        maps.append(Volume(full, t1n.grid))
    return TissueMaps(*maps)


def cache_key(t1n: Volume, exclude: Volume | None, settings: RegistrationSettings) -> str:
    """SHA-256 (hex, 32 characters) of everything the registration depends on."""
    from tumorgen.anatomy.template import _FILES, template_dir

    h = hashlib.sha256()
    h.update(f"tumorgen-tissues-{PIPELINE_VERSION}".encode())
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    folder = template_dir()
    for name in sorted(_FILES.values()):
        h.update(f"{name}:{(folder / name).stat().st_size}".encode())
    for volume in (t1n, exclude):
        if volume is None:
            h.update(b"none")
            continue
        g = volume.grid
        h.update(repr((g.size, g.spacing, g.origin, g.direction, str(volume.dtype))).encode())
        h.update(np.ascontiguousarray(volume.array).tobytes())
    return h.hexdigest()[:32]


# ----------------------------------------------------------------------------- checks


def _check_inputs(t1n: Volume, exclude: Volume | None) -> None:
    arr = t1n.array
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise InputError(f"t1n has a non-numeric voxel type {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InputError("t1n has NaN or infinite voxels")
    if float(arr.max()) == float(arr.min()):
        raise InputError(f"t1n is constant (every voxel is {float(arr.min()):g}); is it an empty image?")
    if min(t1n.grid.size) < 8:
        raise InputError(f"t1n is too small to register ({t1n.grid.size}); expected a 3D brain scan")
    if exclude is not None:
        if not exclude.grid.matches(t1n.grid):
            raise InputError(f"exclude mask and t1n have different geometry: {'; '.join(t1n.grid.differences(exclude.grid))}")
        excluded = np.count_nonzero(exclude.array)
        foreground = np.count_nonzero(arr != arr.min())
        if excluded >= 0.8 * max(foreground, 1):
            raise InputError(
                f"exclude mask covers {excluded} voxels, {100 * excluded / max(foreground, 1):.0f}% of the T1's foreground; "
                "too little anatomy is left to register"
            )


def _skull_stripped_foreground(arr: np.ndarray, voided: np.ndarray | None = None) -> np.ndarray | None:
    """The filled non-zero region (and the ``voided`` region) when the scan has a zero background of at least 10 %, else None."""
    from scipy.ndimage import binary_fill_holes

    nonzero = arr != 0
    if voided is not None:
        nonzero |= voided
    if np.count_nonzero(~nonzero) < 0.1 * arr.size:
        return None
    return binary_fill_holes(nonzero).astype(np.float32)


# ----------------------------------------------------------------------------- registration


def _working_image(volume: Volume, spacing: float):
    """``volume`` on an isotropic working grid, float32, scaled to [0, 1] by its 99.5th percentile."""
    import SimpleITK as sitk

    from tumorgen.resample import resample, working_grid

    arr = volume.array.astype(np.float32)
    lo = float(arr.min())
    hi = float(np.percentile(arr[arr > lo], 99.5)) if np.any(arr > lo) else lo + 1.0
    scaled = volume.with_array(np.clip((arr - lo) / max(hi - lo, 1e-12), 0.0, 1.5).astype(np.float32))
    grid = working_grid(volume.grid, spacing)
    if min(volume.spacing) < spacing:
        # anti-alias before downsampling
        sigma = [max(0.0, 0.5 * (spacing**2 - s**2) ** 0.5) for s in volume.spacing]
        image = sitk.SmoothingRecursiveGaussian(scaled.to_sitk(), sigma)
        scaled = Volume.from_sitk(image)
        scaled = Volume(scaled.array, volume.grid)
    return resample(scaled, grid, interpolation="linear").to_sitk()


def _metric_mask(exclude: Volume | None, fixed, settings: RegistrationSettings):
    if exclude is None:
        return None
    from tumorgen.resample import resample

    grid_exclude = resample(exclude.with_array(exclude.array.astype(np.float32)), Volume.from_sitk(fixed).grid, interpolation="linear")
    mask = grid_exclude.array > 0.0
    if settings.exclude_margin_mm > 0:
        from scipy.ndimage import binary_dilation

        steps = max(1, int(round(settings.exclude_margin_mm / settings.working_spacing_mm)))
        mask = binary_dilation(mask, iterations=steps)
    keep = ~mask
    image = Volume(keep.astype(np.uint8), grid_exclude.grid).to_sitk()
    return image


class _Monitor:
    """Iteration callback of the affine stage: progress and cancellation."""

    def __init__(self, method, stage: str, start: float, end: float, iterations: int, levels: int, progress, cancelled):
        self.method, self.stage, self.start, self.end = method, stage, start, end
        self.total = max(1, iterations * levels)
        self.count = 0
        self.progress, self.cancelled = progress, cancelled
        self.aborted = False

    def __call__(self) -> None:
        self.count += 1
        if self.cancelled is not None and self.cancelled():
            self.aborted = True
            self.method.Abort()
            return
        if self.progress and self.count % 5 == 0:
            fraction = self.start + (self.end - self.start) * min(1.0, self.count / self.total)
            self.progress("register", fraction, f"{self.stage}: iteration {self.count}, metric {self.method.GetMetricValue():.4f}")


def _execute(method, fixed, moving, monitor: _Monitor):
    import SimpleITK as sitk

    method.AddCommand(sitk.sitkIterationEvent, monitor)
    try:
        return method.Execute(fixed, moving)
    except RuntimeError as exc:
        if monitor.aborted:
            raise CancelledError("cancelled during registration") from None
        message = str(exc).strip().splitlines()
        reason = next((line for line in message if "Description" in line), message[-1] if message else "unknown error")
        raise InputError(
            f"registering the template to the T1 failed in the {monitor.stage} stage ({reason.strip()}); "
            "check that t1n is a brain T1, or give tissue maps"
        ) from None
    finally:
        method.RemoveAllCommands()


def _configure(method, settings: RegistrationSettings, mask) -> None:
    import SimpleITK as sitk

    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(settings.sampling, settings.seed)
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()


def _affine_stage(fixed, moving, mask, settings: RegistrationSettings, progress, cancelled, end: float):
    import SimpleITK as sitk

    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    _configure(method, settings, mask)
    method.SetOptimizerAsGradientDescent(
        learningRate=1.0,
        numberOfIterations=settings.affine_iterations,
        convergenceMinimumValue=1e-6,
        convergenceWindowSize=10,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(initial, inPlace=False)
    monitor = _Monitor(method, "affine", 0.05, end, settings.affine_iterations, 2, progress, cancelled)
    result = _execute(method, fixed, moving, monitor)
    return _first_affine(result), float(method.GetMetricValue())


def _masked_mse(a, b, keep: np.ndarray) -> float:
    import SimpleITK as sitk

    diff = sitk.GetArrayViewFromImage(a) - sitk.GetArrayViewFromImage(b)
    return float(np.mean(np.square(diff[keep]))) if keep.any() else 0.0


def _demons_stage(fixed, moved, keep_kji: np.ndarray, settings: RegistrationSettings, progress, cancelled, start: float, end: float):
    """A displacement field on ``fixed``'s grid such that ``moved(x + u(x)) ≈ fixed(x)``.

    ``moved`` is the template already on ``fixed``'s grid through the affine;
    ``keep_kji`` (numpy order) is False where the subject must not pull.
    """
    import SimpleITK as sitk

    matched = sitk.HistogramMatching(moved, fixed, 128, 7, True)
    # the excluded region: the subject shows the template there, so it exerts no force
    target_arr = np.where(keep_kji, sitk.GetArrayFromImage(fixed), sitk.GetArrayFromImage(matched)).astype(np.float32)
    target = sitk.GetImageFromArray(target_arr)
    target.CopyInformation(fixed)
    sigma_vox = settings.demons_sigma_mm / settings.working_spacing_mm
    total = max(1, sum(settings.demons_iterations))
    done = [0]
    field = None
    for shrink, iterations in zip((2, 1), settings.demons_iterations):
        if iterations == 0:
            continue
        f, m = target, matched
        if shrink > 1:
            f = sitk.Shrink(sitk.SmoothingRecursiveGaussian(target, settings.working_spacing_mm), [shrink] * 3)
            m = sitk.Shrink(sitk.SmoothingRecursiveGaussian(matched, settings.working_spacing_mm), [shrink] * 3)
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(iterations)
        demons.SetStandardDeviations(sigma_vox / shrink)
        demons.SetSmoothDisplacementField(True)
        stopped = [False]

        def on_iteration(demons=demons):
            done[0] += 1
            if cancelled is not None and cancelled():
                stopped[0] = True
                demons.StopRegistration()
            elif progress and done[0] % 5 == 0:
                progress("register", start + (end - start) * min(1.0, done[0] / total), f"deformable: iteration {done[0]}/{total}")

        demons.AddCommand(sitk.sitkIterationEvent, on_iteration)
        if field is None:
            field = demons.Execute(f, m)
        else:
            initial = sitk.Resample(field, f, sitk.Transform(), sitk.sitkLinear, 0.0, field.GetPixelID())
            field = demons.Execute(f, m, initial)
        if stopped[0]:
            raise CancelledError("cancelled during registration")
    if field is None:
        return None
    if field.GetSize() != fixed.GetSize():
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0, field.GetPixelID())
    if not keep_kji.all():
        field = _fill_excluded(field, keep_kji)
    return sitk.Cast(field, sitk.sitkVectorFloat32)


def _fill_excluded(field, keep_kji: np.ndarray):
    """Replace the displacement inside the excluded region by a normalised-convolution average of its surroundings.

    The demons forces are zero in there, so what the field holds is whatever the
    smoothing carried in; an average of the displacement around the region,
    weighted by a Gaussian as wide as the region, is the smooth continuation.
    """
    import SimpleITK as sitk
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    keep = keep_kji
    u = sitk.GetArrayFromImage(field)  # [k, j, i, 3]
    radius = float(distance_transform_edt(~keep).max())  # voxels from the region's edge to its centre
    sigma = max(1.0, radius)
    weight = gaussian_filter(keep.astype(np.float64), sigma)
    filled = u.copy()
    inside = ~keep
    for c in range(3):
        avg = gaussian_filter(u[..., c] * keep, sigma) / np.maximum(weight, 1e-6)
        filled[..., c][inside] = avg[inside]
    out = sitk.GetImageFromArray(filled, isVector=True)
    out.CopyInformation(field)
    return out


def _register(t1n: Volume, exclude: Volume | None, settings: RegistrationSettings, progress, cancelled) -> Registration:
    import SimpleITK as sitk

    from tumorgen.anatomy.template import load_mni152

    started = time.perf_counter()
    if progress:
        progress("register", 0.0, "preparing the working images")
    template = load_mni152()
    fixed = _working_image(t1n, settings.working_spacing_mm)
    moving = _working_image(template.t1, settings.working_spacing_mm)
    mask = _metric_mask(exclude, fixed, settings)
    if cancelled is not None and cancelled():
        raise CancelledError("cancelled before registration")

    end_affine = 0.5 if settings.deformable else 0.9
    affine, metric_affine = _affine_stage(fixed, moving, mask, settings, progress, cancelled, end_affine)
    moved = sitk.Resample(moving, fixed, affine, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    keep = sitk.GetArrayFromImage(mask).astype(bool) if mask is not None else np.ones(sitk.GetArrayViewFromImage(fixed).shape, bool)
    mse_affine = _masked_mse(fixed, moved, keep)
    displacement, mse_final = None, mse_affine
    if settings.deformable:
        displacement = _demons_stage(fixed, moved, keep, settings, progress, cancelled, end_affine, 0.9)
        if displacement is not None:
            warped = sitk.Resample(moved, fixed, sitk.DisplacementFieldTransform(sitk.Cast(displacement, sitk.sitkVectorFloat64)), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
            mse_final = _masked_mse(fixed, warped, keep)
    seconds = time.perf_counter() - started
    if progress:
        progress("register", 0.9, f"registered in {seconds:.1f} s")
    return Registration(affine, displacement, metric_affine, mse_affine, mse_final, seconds)


def _first_affine(transform):
    import SimpleITK as sitk

    if transform.GetName() == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        transform = composite.GetNthTransform(0)
    return sitk.AffineTransform(transform)


# ----------------------------------------------------------------------------- cache


def _read_cache(folder: Path) -> Optional[Registration]:
    import SimpleITK as sitk

    meta_path, affine_path, field_path = folder / "registration.json", folder / "affine.tfm", folder / "displacement.nii.gz"
    if not (meta_path.is_file() and affine_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        affine = _first_affine(sitk.ReadTransform(str(affine_path)))
        displacement = sitk.ReadImage(str(field_path)) if meta["deformable"] else None
        return Registration(
            affine, displacement, meta["metric_affine"], meta["mse_affine"], meta["mse_final"], meta["seconds"], cached=True
        )
    except (OSError, ValueError, KeyError, RuntimeError):
        return None  # a damaged entry is recomputed (and overwritten)


def _write_cache(folder: Path, result: Registration, settings: RegistrationSettings) -> None:
    """Store the registration; written to a temporary folder and renamed, so an entry is whole or absent."""
    import SimpleITK as sitk

    def write(staging: Path) -> None:
        sitk.WriteTransform(result.affine, str(staging / "affine.tfm"))
        if result.displacement is not None:
            sitk.WriteImage(result.displacement, str(staging / "displacement.nii.gz"), True)
        meta = {
            "pipeline_version": PIPELINE_VERSION,
            "settings": asdict(settings),
            "deformable": result.displacement is not None,
            "metric_affine": result.metric_affine,
            "mse_affine": result.mse_affine,
            "mse_final": result.mse_final,
            "seconds": result.seconds,
        }
        (staging / "registration.json").write_text(json.dumps(meta, indent=2))

    try:
        replace_dir(folder, write)
    except (OSError, RuntimeError):
        pass  # an unwritable cache only costs time


def clear_cache(cache_dir: str | os.PathLike | None = None) -> int:
    """Remove every cached registration; returns how many entries were removed."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    if not root.is_dir():
        return 0
    count = 0
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            count += 1
    return count


__all__ = [
    "Registration",
    "RegistrationSettings",
    "cache_key",
    "cache_root",
    "carry_tissues",
    "clear_cache",
    "register_template",
    "tissues_for_subject",
]
