"""Label-map synthesis: the label fractions, the engine's contract, the training data, the task, the command and the recipe.

Small untrained models at 4 mm on a phantom brain: these tests check the
arithmetic and the contract (geometry, the scan kept away from the tumor,
ranges, determinism, errors, nothing written on failure);
``Testing/benchmarks/bench_synthesis.py`` measures the quality with the bundled
generator on held-out simulated label maps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tumorgen_testing import assert_same_geometry, brain_phantom, phantom_t1, run_backend, small_models

from tumorgen.cli.main import main
from tumorgen.errors import InputError
from tumorgen.synthesis.model import CONTRASTS, label_fractions
from tumorgen.synthesis.synthesize import SynthesisModel, SynthesisSettings, synthesize
from tumorgen.volume import Volume
from tumorgen.volume_io import read_volume, write_volume

SIZE = (48, 44, 40)
CENTRE = np.array([30, 22, 20])


def _labels(ref: Volume, radius: float = 7.0) -> Volume:
    """Nested spheres: oedema (2) shell, enhancing (3) rim, necrosis (1) centre."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in ref.shape], indexing="ij"), -1)
    r = np.linalg.norm(idx - CENTRE, axis=-1)
    seg = np.zeros(ref.shape, np.uint8)
    seg[r < radius] = 2
    seg[r < 0.65 * radius] = 3
    seg[r < 0.35 * radius] = 1
    return ref.with_array(seg)


@pytest.fixture(scope="module")
def scan():
    tissues = brain_phantom(SIZE)
    return phantom_t1(tissues, scale=1000.0, dtype=np.float32), tissues


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory.mktemp("synth-models"), synthesis=True)


@pytest.fixture(scope="module")
def model(models):
    return SynthesisModel(models, device="cpu")


def test_label_fractions_are_nested_block_means():
    seg = np.zeros((8, 8, 4), np.uint8)
    seg[:4, :4, :4] = 2                  # block (0, 0, 0): all oedema
    seg[4:, :4, :4] = 3                  # block (1, 0, 0): all enhancing
    seg[4:, :4, :2] = 1                  # ... half of it necrosis
    seg[:4, 4:, :1] = 1                  # block (0, 1, 0): a quarter necrosis
    f = label_fractions(seg, 4)
    assert f.shape == (3, 2, 2, 1)
    whole, core, necrosis = f
    np.testing.assert_allclose(whole[:, :, 0], [[1.0, 0.25], [1.0, 0.0]])
    np.testing.assert_allclose(core[:, :, 0], [[0.0, 0.25], [1.0, 0.0]])
    np.testing.assert_allclose(necrosis[:, :, 0], [[0.0, 0.25], [0.5, 0.0]])
    assert np.all(necrosis <= core) and np.all(core <= whole)
    with pytest.raises(ValueError, match="multiple of 4"):
        label_fractions(np.zeros((6, 8, 8), np.uint8), 4)


def test_synthesis_keeps_geometry_ranges_and_the_scan_away_from_the_tumor(model, scan):
    t1n, _ = scan
    labels = _labels(t1n)
    before = t1n.array.copy(), labels.array.copy()
    result = synthesize(model, t1n, labels, SynthesisSettings(steps=2, seed=3, blend_mm=6.0))
    assert set(result.images) == set(CONTRASTS)
    for volume in (*result.images.values(), result.seg):
        assert_same_geometry(volume.grid, t1n.grid)
    np.testing.assert_array_equal(result.seg.array, labels.array)
    brain = t1n.array > 0
    for contrast in ("t1c", "t2w", "t2f"):
        image = result.images[contrast].array
        assert image.dtype == np.float32 and image.min() >= 0.0 and image.max() <= 1.0
        assert np.all(image[~brain] == 0.0)
        assert image[brain].std() > 0
    # t1n: the scan itself beyond the tumor grown by the blend margin, generated inside the tumor
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(labels.array == 0)
    far = distance > 6.0
    np.testing.assert_array_equal(result.images["t1n"].array[far], t1n.array[far])
    assert not np.allclose(result.images["t1n"].array[labels.array > 0], t1n.array[labels.array > 0])
    # in the scan's units: the generated part lies within the scan's own range
    inside = result.images["t1n"].array[labels.array > 0]
    assert inside.min() >= t1n.array[brain].min() - 1e-3 and inside.max() <= t1n.array.max() + 1e-3
    # the inputs are untouched
    np.testing.assert_array_equal(t1n.array, before[0])
    np.testing.assert_array_equal(labels.array, before[1])
    assert result.info["network_evaluations"] == 16 and result.info["samples"] == 2 and result.info["regions_cm3"]["necrotic"] > 0


def test_synthesis_is_deterministic_for_a_seed(model, scan):
    t1n, _ = scan
    labels = _labels(t1n)
    a = synthesize(model, t1n, labels, SynthesisSettings(steps=2, seed=1, samples=1))
    b = synthesize(model, t1n, labels, SynthesisSettings(steps=2, seed=1, samples=1))
    c = synthesize(model, t1n, labels, SynthesisSettings(steps=2, seed=2, samples=1))
    for contrast in CONTRASTS:
        np.testing.assert_array_equal(a.images[contrast].array, b.images[contrast].array)
    assert not np.array_equal(a.images["t2w"].array, c.images["t2w"].array)
    # two samples: the mean of the draws with seeds 1 and 2
    both = synthesize(model, t1n, labels, SynthesisSettings(steps=2, seed=1, samples=2))
    brain = t1n.array > 0
    for contrast in ("t1c", "t2w", "t2f"):
        np.testing.assert_allclose(both.images[contrast].array[brain],
                                   (a.images[contrast].array[brain] + c.images[contrast].array[brain]) / 2, atol=1e-5)


def test_bad_labels_and_scans_get_one_line_errors(model, scan):
    t1n, _ = scan
    labels = _labels(t1n)
    bad = labels.array.copy()
    bad[0, 0, 0] = 5
    cases = [
        (t1n, labels.with_array(bad), "values \\[5\\] that are not BraTS labels"),
        (t1n, labels.with_array(np.zeros_like(bad)), "empty: no tumor voxel"),
        (t1n.with_array(np.zeros(t1n.shape, np.float32)), labels, "no brain voxels"),
        (t1n.with_array(np.where(t1n.array > 0, 7.0, 0.0).astype(np.float32)), labels, "constant intensity"),
    ]
    for image, seg, message in cases:
        with pytest.raises(InputError, match=message) as err:
            synthesize(model, image, seg, SynthesisSettings(steps=1))
        assert "\n" not in str(err.value)
    shifted = Volume(labels.array, labels.grid.__class__(labels.grid.size, labels.grid.spacing, (0.0, 0.0, 0.0), labels.grid.direction))
    with pytest.raises(InputError, match="different geometry"):
        synthesize(model, t1n, shifted, SynthesisSettings(steps=1))
    with pytest.raises(InputError, match="steps must be between"):
        SynthesisSettings(steps=0)


def test_command_and_backend_task(models, scan, tmp_path):
    t1n, _ = scan
    labels = _labels(t1n)
    t1n_path = write_volume(t1n, tmp_path / "healthy-t1n.nii.gz")
    seg_path = write_volume(labels, tmp_path / "tumor-seg.nii.gz")
    conc = labels.with_array(np.select([labels.array == 1, labels.array == 3, labels.array == 2], [0.95, 0.7, 0.4], 0.0).astype(np.float32))
    conc_path = write_volume(conc, tmp_path / "tumor-concentration.nii.gz")
    out = tmp_path / "CASE-0001"
    args = ["synthesize", "--t1n", str(t1n_path), "--seg", str(seg_path), "--out", str(out), "--steps", "2", "--weights", str(models),
            "--device", "cpu", "--quiet"]
    assert main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"CASE-0001-{c}.nii.gz" for c in (*CONTRASTS, "seg")] + ["CASE-0001.json"])
    written = read_volume(out / "CASE-0001-t2f.nii.gz")
    assert_same_geometry(written.grid, t1n.grid)
    np.testing.assert_array_equal(read_volume(out / "CASE-0001-seg.nii.gz").array, labels.array)
    assert json.loads((out / "CASE-0001.json").read_text())["settings"]["steps"] == 2
    # bad labels: one line, exit 2, no output folder
    bad = labels.array.copy()
    bad[labels.array == 2] = 7
    bad_path = write_volume(labels.with_array(bad), tmp_path / "bad-seg.nii.gz")
    failed = tmp_path / "failed"
    assert main([*args[:3], "--seg", str(bad_path), "--out", str(failed), *args[7:]]) == 2
    assert not failed.exists()
    # a 4D file
    import SimpleITK as sitk

    four = sitk.GetImageFromArray(np.zeros((2, 8, 8, 8), np.uint8), isVector=False)
    sitk.WriteImage(four, str(tmp_path / "four-d.nii.gz"))
    assert main([*args[:3], "--seg", str(tmp_path / "four-d.nii.gz"), "--out", str(failed), *args[7:]]) == 2
    assert not failed.exists()
    # the backend task, from a concentration field
    job = {"task": "synthesize", "inputs": {"t1n": str(t1n_path), "concentration": str(conc_path)},
           "params": {"steps": 2, "seed": 4, "weights": str(models)}, "device": "cpu", "output_dir": str(tmp_path / "job")}
    code, events, stderr = run_backend(job, tmp_path, timeout=120)
    assert code == 0, stderr
    result = [e for e in events if e["type"] == "result"][-1]["outputs"]
    assert set(result) == {"t1n", "t1c", "t2w", "t2f", "seg", "summary"}
    seg = read_volume(result["seg"])
    assert set(np.unique(seg.array)) == {0, 1, 2, 3}
    assert_same_geometry(read_volume(result["t1c"]).grid, t1n.grid)


def test_the_training_pairs_and_a_few_training_steps(models, tmp_path):
    """The simulator's healthy reference is the same subject imaged with the same draws; the generator trains on the pairs."""
    data = tmp_path / "pairs"
    assert main(["simulate", "--n", "2", "--seed", "5", "--spacing", "4", "--out", str(data), "--healthy-reference", "--quiet",
                 "--volume", "20,40"]) == 0
    case = sorted(p for p in data.iterdir() if p.is_dir())[0]
    tumor = read_volume(case / f"{case.name}-t1n.nii.gz").array
    healthy = read_volume(case / f"{case.name}-t1n-healthy.nii.gz").array
    seg = read_volume(case / f"{case.name}-seg.nii.gz").array
    from scipy.ndimage import distance_transform_edt

    far = (distance_transform_edt(seg == 0) > 6) & (healthy > 0)
    near = (seg > 0) & (healthy > 0)
    assert np.abs(tumor - healthy)[far].mean() < 0.06         # the same anatomy and imaging, up to noise
    assert np.abs(tumor - healthy)[near].mean() > 0.1          # the tumor is not in the healthy scan
    out = tmp_path / "run"
    assert main(["train", "synthesis", "--data", str(data), "--config", str(models / "small.json"), "--out", str(out),
                 "--autoencoder", str(models / "autoencoder.safetensors"), "--steps", "3", "--batch", "2", "--device", "cpu",
                 "--quiet"]) == 0
    card = json.loads((out / "synthesis.json").read_text())
    assert card["model"] == "synthesis" and card["training_data"]["cases"] == sorted(p.name for p in data.iterdir() if p.is_dir())
    assert np.isfinite(card["final_loss"]) and card["training_data"]["contrasts"] == list(CONTRASTS)
    # pairs are required
    plain = tmp_path / "plain"
    assert main(["simulate", "--n", "1", "--seed", "5", "--spacing", "4", "--out", str(plain), "--quiet"]) == 0
    assert main(["train", "synthesis", "--data", str(plain), "--config", str(models / "small.json"), "--out", str(tmp_path / "run2"),
                 "--autoencoder", str(models / "autoencoder.safetensors"), "--steps", "1", "--device", "cpu", "--quiet"]) == 2


def test_recipe_makes_a_case_from_an_augmented_label_map(models, scan, tmp_path, monkeypatch):
    """``make_case`` with a folder of label maps and a given scan: the tumor is relocated into white matter, labels nested."""
    from tumorgen.synthesis import recipe

    t1n, tissues = scan
    t1n_path = write_volume(t1n, tmp_path / "healthy-t1n.nii.gz")
    pool = tmp_path / "labels"
    pool.mkdir()
    write_volume(_labels(t1n, radius=5.0), pool / "A-seg.nii.gz")
    monkeypatch.setattr(recipe, "target_brain", lambda path: (read_volume(path), tissues))  # no registration for a phantom
    staging = tmp_path / "TGSYN-00003"
    staging.mkdir()
    settings = {"t1n": str(t1n_path), "labels": str(pool), "steps": 1, "device": "cpu", "weights": str(models)}
    record = recipe.make_case(3, 12345, staging, settings)
    assert record["source"] == "augmented A-seg.nii.gz" and record["regions_cm3"]["edema"] > 0
    seg = read_volume(staging / "TGSYN-00003-seg.nii.gz").array
    whole, core, necrosis = seg > 0, np.isin(seg, (1, 3)), seg == 1
    assert whole.any() and core.any()
    assert np.all(tissues.brain_mask().array[whole])
    again = tmp_path / "again" / "TGSYN-00003"
    again.mkdir(parents=True)
    assert recipe.make_case(3, 12345, again, settings) == record
    for suffix in (*CONTRASTS, "seg"):
        a = (staging / f"TGSYN-00003-{suffix}.nii.gz").read_bytes()
        assert a == (again / f"TGSYN-00003-{suffix}.nii.gz").read_bytes()


def test_dataset_command_with_the_real_recipe_gives_the_same_bytes_in_process_and_on_ray(models, scan, tmp_path):
    """``tumorgen dataset`` end to end: tumors grown by FK in a given scan (its tissue maps beside it), small models; two
    cases in this process and on a local Ray with two workers are byte for byte the same, and the datalist lists them."""
    import hashlib

    t1n, tissues = scan
    t1n_path = write_volume(t1n, tmp_path / "PH-t1n.nii.gz")
    for name in ("csf", "gm", "wm"):
        write_volume(getattr(tissues, name), tmp_path / f"PH-tissue-{name}.nii.gz")
    common = ["--n", "2", "--seed", "3", "--steps", "1", "--samples", "1", "--weights", str(models), "--device", "cpu", "--quiet", "--t1n", str(t1n_path),
              "--volume", "2,4"]
    assert main(["dataset", "--out", str(tmp_path / "process"), "--workers", "0", *common]) == 0
    assert main(["dataset", "--out", str(tmp_path / "ray"), "--workers", "2", *common]) == 0
    digests = {}
    for mode in ("process", "ray"):
        root = tmp_path / mode
        datalist = json.loads((root / "dataset.json").read_text())
        assert datalist["numTraining"] == 2 and [e["case"] for e in datalist["training"]] == ["TGSYN-00000", "TGSYN-00001"]
        files = sorted(p for p in root.rglob("*.nii.gz"))
        assert len(files) == 10 and not list(root.glob(".partial-*"))
        digests[mode] = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        entry = datalist["training"][0]
        assert entry["source"] == "grown (Fisher-Kolmogorov)" and sum(entry["regions_cm3"].values()) > 1.0
        assert read_volume(root / entry["image"][2]).grid == t1n.grid
        seg = read_volume(root / entry["label"]).array
        assert set(np.unique(seg)) <= {0, 1, 2, 3} and (seg > 0).any()
    assert digests["process"] == digests["ray"]
