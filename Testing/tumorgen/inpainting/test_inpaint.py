"""The inpainting pipeline, its task and its command, with small untrained models.

Untrained networks generate noise, so these tests check the contract (geometry,
voxels outside the mask untouched, scale, seeds, samples, errors), not quality;
the benchmark measures quality with the bundled models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tumorgen_testing import brain_phantom, phantom_t1, run_backend, small_models

from tumorgen.cli.main import main
from tumorgen.errors import InputError
from tumorgen.inpainting.core import InpaintSettings, crop_box, inpaint
from tumorgen.models.sampling import LatentDiffusion
from tumorgen.volume import Volume
from tumorgen.volume_io import read_volume, write_volume

FAST = dict(steps=6, jump=2, resample=2)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("inpaint-models")
    return {"1mm": small_models(root / "1mm", spacing_mm=1.0), "4mm": small_models(root / "4mm", spacing_mm=4.0)}


@pytest.fixture(scope="module")
def subject():
    tissues = brain_phantom()
    image = phantom_t1(tissues)
    mask = np.zeros(image.shape, bool)
    mask[18:30, 16:27, 14:25] = True
    maps = {"csf": tissues.csf, "gm": tissues.gm, "wm": tissues.wm}
    return image, image.with_array(mask), maps


def test_crop_box_holds_the_mask_and_margin_in_multiples_where_it_can():
    mask = np.zeros((60, 50, 20), bool)
    mask[20:30, 2:9, 5:15] = True
    box = crop_box(mask, (4, 4, 4), 16, mask.shape)
    sizes = [s.stop - s.start for s in box]
    assert sizes == [32, 16, 20]  # 18 → 32; 2..13 → 16 from the edge; z capped by the image (20)
    assert box[0].start <= 16 and box[0].stop >= 34 and box[1].start == 0 and box[2] == slice(0, 20)
    assert all(0 <= s.start < s.stop <= n for s, n in zip(box, mask.shape))


def test_outside_the_mask_is_bit_identical_and_the_geometry_is_kept(models, subject):
    image, mask, maps = subject
    before = image.array.copy()
    result = inpaint(LatentDiffusion(models["1mm"]), image, mask, maps, InpaintSettings(samples=2, **FAST))
    assert np.array_equal(image.array, before)  # input untouched
    inside = mask.array
    for volume in (result.mean, *result.samples):
        assert volume.grid == image.grid and volume.dtype == image.dtype == np.int16
        assert np.array_equal(volume.array[~inside], image.array[~inside])
    assert not np.array_equal(result.samples[0].array[inside], image.array[inside])
    assert not np.array_equal(result.samples[0].array, result.samples[1].array)
    assert np.all(result.std.array[~inside] == 0) and result.std.array[inside].max() > 0
    mean = (result.samples[0].array.astype(float) + result.samples[1].array) / 2
    assert np.abs(result.mean.array[inside] - mean[inside]).max() <= 0.5 + 1e-9  # rounded to the input's integers
    assert set(result.timings) >= {"encode", "sample", "decode", "postprocess"}
    assert [s.stop - s.start for s in result.box] == [32, 32, 32]


def test_any_intensity_scale_comes_back_in_the_input_scale(models, subject):
    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])
    small = image.with_array((image.array * 0.001).astype(np.float32))
    out = inpaint(model, small, mask, maps, InpaintSettings(**FAST)).mean.array
    big = inpaint(model, image.with_array(image.array.astype(np.float32) * 1000), mask, maps, InpaintSettings(**FAST)).mean.array
    assert out.dtype == np.float32 and np.array_equal(out[~mask.array], small.array[~mask.array])
    assert np.allclose(out[mask.array] * 1e6, big[mask.array], rtol=1e-3, atol=1e-2)  # the same result in a scale 10⁶ larger


def test_seeds_repeat_and_post_processing_is_switchable(models, subject):
    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])
    a = inpaint(model, image, mask, maps, InpaintSettings(seed=3, **FAST)).mean.array
    b = inpaint(model, image, mask, maps, InpaintSettings(seed=3, **FAST)).mean.array
    c = inpaint(model, image, mask, maps, InpaintSettings(seed=4, **FAST)).mean.array
    raw = inpaint(model, image, mask, maps, InpaintSettings(seed=3, histogram=False, poisson=False, **FAST)).mean.array
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, raw)
    assert np.array_equal(raw[~mask.array], image.array[~mask.array])
    histogram_only = inpaint(model, image, mask, maps, InpaintSettings(seed=3, histogram=True, poisson=False, **FAST)).mean.array
    assert not np.array_equal(histogram_only, a) and not np.array_equal(histogram_only, raw)


def test_samples_run_as_one_batch_and_each_equals_its_seed_alone(models, subject, monkeypatch):
    """Three samples go through the networks together (batches of SAMPLE_BATCH); sample k is seed 3 + k's result."""
    import tumorgen.inpainting.core as core

    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])
    batches = []
    own = model.predict_noise
    monkeypatch.setattr(model, "predict_noise", lambda x, *args: batches.append(x.shape[0]) or own(x, *args))
    settings = dict(self_check=False, histogram=False, poisson=False, **FAST)
    together = inpaint(model, image, mask, maps, InpaintSettings(seed=3, samples=3, **settings))
    assert set(batches) == {3}
    batches.clear()
    monkeypatch.setattr(core, "SAMPLE_BATCH", 2)  # more samples than a batch: batches of 2 and 1
    split = inpaint(model, image, mask, maps, InpaintSettings(seed=3, samples=3, **settings))
    assert sorted(set(batches)) == [1, 2]
    for k in range(3):
        alone = inpaint(model, image, mask, maps, InpaintSettings(seed=3 + k, samples=1, **settings)).mean.array
        inside = mask.array
        for sample in (together.samples[k].array, split.samples[k].array):
            assert np.abs(sample[inside].astype(float) - alone[inside].astype(float)).max() <= 1  # int16: rounding
    assert not np.array_equal(together.samples[0].array, together.samples[1].array)
    stack = np.stack([s.array.astype(float) for s in together.samples])
    assert np.allclose(together.std.array[mask.array], stack.std(0)[mask.array], atol=1e-3)
    assert (together.std.array[~mask.array] == 0).all()


def test_the_fill_priors_are_a_start_for_healthy_tissue_only(models, subject):
    """prior=noise is a fill prior at strength 1 (pure noise); auto is the harmonic fill for registered tissue maps
    and noise for given ones; the blend toward the learned fill with depth changes only the mask's voxels; tumor mode
    starts from noise whatever the prior."""
    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])

    def run(registered_maps=False, **settings):
        return inpaint(model, image, mask, maps, InpaintSettings(**settings, **FAST), registered_maps=registered_maps).mean.array

    noise = run(prior="noise")
    harmonic = run(prior="harmonic", strength=0.5)
    learned = run(prior="unet", strength=0.5)
    assert np.array_equal(noise, run(prior="harmonic", strength=1.0)) and not np.array_equal(noise, harmonic)
    assert np.array_equal(noise, run(prior="unet", strength=1.0))
    assert not np.array_equal(learned, harmonic) and not np.array_equal(learned, noise)
    assert np.array_equal(run(prior="auto", strength=0.5, registered_maps=True), harmonic)
    blended = run(prior="unet", strength=0.5, registered_maps=True, confidence_mm=4)  # the blend: the mask's voxels only
    assert np.array_equal(run(prior="unet", strength=0.5, registered_maps=True), learned)  # off by default
    assert not np.array_equal(blended, learned) and np.array_equal(blended[~mask.array], learned[~mask.array])
    assert np.array_equal(run(prior="auto", strength=0.5), noise) and np.array_equal(run(prior="noise", registered_maps=True), noise)
    # the walk [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, −1] from its first 2 (strength 0.5 of 6 steps) has 7 denoising moves
    assert InpaintSettings(prior="harmonic", strength=0.5, **FAST).network_evaluations() == 7
    assert InpaintSettings(**FAST).network_evaluations(registered_maps=True) == 3  # strength 0.2: from grid index 0
    assert InpaintSettings(**FAST).network_evaluations() == InpaintSettings(prior="noise", **FAST).network_evaluations() == 6 + 2 * 2
    conc = image.with_array(np.where(mask.array, 0.8, 0.0).astype(np.float32))
    tumor = [inpaint(model, image, mask, maps, InpaintSettings(mode="tumor", prior=p, **FAST), concentration=conc,
                     registered_maps=True).mean.array for p in ("harmonic", "noise")]
    assert np.array_equal(*tumor) and InpaintSettings(mode="tumor", prior="harmonic", **FAST).network_evaluations(True) == 6 + 2 * 2
    with pytest.raises(InputError, match="strength"):
        InpaintSettings(strength=0.0)


def test_a_model_on_another_grid_works_through_resampling(models, subject):
    image, mask, maps = subject
    result = inpaint(LatentDiffusion(models["4mm"]), image, mask, maps, InpaintSettings(**FAST))
    assert np.array_equal(result.mean.array[~mask.array], image.array[~mask.array])
    assert not np.array_equal(result.mean.array[mask.array], image.array[mask.array])


def test_tumor_mode_takes_the_concentration(models, subject):
    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])
    conc = np.zeros(image.shape, np.float32)
    conc[20:28, 18:25, 16:23] = 0.9
    tumor = inpaint(model, image, mask, maps, InpaintSettings(mode="tumor", **FAST), concentration=image.with_array(conc)).mean.array
    healthy = inpaint(model, image, mask, maps, InpaintSettings(**FAST)).mean.array
    assert not np.array_equal(tumor, healthy) and np.array_equal(tumor[~mask.array], image.array[~mask.array])
    with pytest.raises(InputError, match="concentration"):
        inpaint(model, image, mask, maps, InpaintSettings(mode="tumor", **FAST))
    with pytest.raises(InputError, match="zero everywhere inside the mask"):
        inpaint(model, image, mask, maps, InpaintSettings(mode="tumor", **FAST), concentration=image.with_array(np.zeros_like(conc)))


def test_bad_inputs_are_refused_with_one_line(models, subject):
    image, mask, maps = subject
    model = LatentDiffusion(models["1mm"])
    with pytest.raises(InputError, match="empty"):
        inpaint(model, image, mask.with_array(np.zeros(image.shape, bool)), maps, InpaintSettings(**FAST))
    with pytest.raises(InputError, match="whole image"):
        inpaint(model, image, mask.with_array(np.ones(image.shape, bool)), maps, InpaintSettings(**FAST))
    shifted = Volume(mask.array, mask.grid.__class__(mask.grid.size, mask.grid.spacing, (0.0, 0.0, 0.0), mask.grid.direction))
    with pytest.raises(InputError, match="different geometry"):
        inpaint(model, image, shifted, maps, InpaintSettings(**FAST))
    with pytest.raises(InputError, match="missing"):
        inpaint(model, image, mask, {"csf": maps["csf"]}, InpaintSettings(**FAST))
    with pytest.raises(InputError, match="too little brain"):
        inpaint(model, image.with_array(np.zeros(image.shape, np.int16)), mask, maps, InpaintSettings(**FAST))
    with pytest.raises(InputError, match="resample"):
        InpaintSettings(resample=0)


def _files(folder, subject):
    image, mask, maps = subject
    paths = {"t1n": write_volume(image, folder / "t1n.nii.gz"), "mask": write_volume(mask.with_array(mask.array.astype(np.uint8)), folder / "mask.nii.gz")}
    paths.update({k: write_volume(v, folder / f"{k}.nii.gz") for k, v in maps.items()})
    return paths


def test_the_backend_task_round_trip(tmp_path, models, subject):
    paths = _files(tmp_path, subject)
    job = {"task": "inpaint", "inputs": {k: str(v) for k, v in paths.items()}, "device": "cpu", "output_dir": str(tmp_path / "out"),
           "params": {"weights": str(models["1mm"]), "samples": 2, **FAST}}
    code, events, stderr = run_backend(job, tmp_path, timeout=180)
    assert code == 0, stderr
    result = [e for e in events if e["type"] == "result"][-1]["outputs"]
    assert set(result) == {"inpainted", "std", "sample-0", "sample-1", "mask"}
    out = read_volume(result["inpainted"])
    image, mask, _ = subject
    # the generated region comes back as a file of the job (front ends load it from there)
    assert Path(result["mask"]).read_bytes() == paths["mask"].read_bytes()
    assert out.grid == image.grid and np.array_equal(out.array[~mask.array], image.array[~mask.array])
    progress = [e["fraction"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] >= 0.98

    bad = dict(job, params={"weights": str(models["1mm"]), "mode": "tumor"}, output_dir=str(tmp_path / "bad"))
    code, events, _ = run_backend(bad, tmp_path, timeout=120)
    assert code == 2 and [e for e in events if e["type"] == "error"][-1]["message"].startswith("tumor mode needs a concentration")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_the_command_writes_the_mean_the_spread_and_each_sample(tmp_path, models, subject, capsys):
    paths = _files(tmp_path, subject)
    out = tmp_path / "res" / "case-inpainted.nii.gz"
    out.parent.mkdir()
    base = ["inpaint", "--t1n", str(paths["t1n"]), "--mask", str(paths["mask"]), "--csf", str(paths["csf"]), "--gm", str(paths["gm"]),
            "--wm", str(paths["wm"]), "--steps", "6", "--jump", "2", "--resample", "2", "--weights", str(models["1mm"]), "--quiet"]
    assert main(base + ["--out", str(out), "--samples", "2"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["schedule"]["network_evaluations"] == 6 + 2 * 2 and summary["tissues"] == "user tissue maps"
    assert summary["self_check"] is None  # the phantom has no room for a probe clear of this mask
    assert "self-check: no region" in captured.err
    assert sorted(p.name for p in out.parent.iterdir()) == ["case-inpainted-sample-0.nii.gz", "case-inpainted-sample-1.nii.gz",
                                                            "case-inpainted-std.nii.gz", "case-inpainted.nii.gz"]
    assert main(base + ["--out", str(tmp_path / "x.png")]) == 2
    assert "NIfTI" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "y.nii.gz"), "--mode", "tumor"]) == 2
    assert "concentration" in capsys.readouterr().err and not (tmp_path / "y.nii.gz").exists()
