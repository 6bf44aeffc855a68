"""Post-operative prediction: the case library, retrieval, the composite prompt, the generator's contract, task and command.

Phantom pairs (an ellipsoidal brain with a spherical tumor, and the same brain
with the tumor's core resected) and small untrained models: these tests check
the contract (geometry, voxels beyond the region untouched, outputs, errors,
retrieval's arithmetic); ``Testing/benchmarks/bench_postop.py`` measures quality
with the bundled models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tumorgen_testing import brain_phantom, phantom_t1, run_backend, small_models

from tumorgen.cli.main import main
from tumorgen.errors import InputError
from tumorgen.models.sampling import LatentDiffusion
from tumorgen.postop.library import (FORMAT, CaseLibrary, LibraryCase, build_library, find_pairs, read_pair, template_grids)
from tumorgen.postop.predict import PostopSettings, predict_postop
from tumorgen.volume_io import read_volume, write_volume

SIZE = (48, 52, 44)
FAST = dict(steps=4, samples=2, strength=0.5)
CENTRES = ((18, 26, 22), (30, 26, 22), (24, 20, 20))


def _affine(*_):
    """The phantom's subject → template transform: a shift of its centre onto the template's (a phantom is too unlike a
    brain for the template's registration to mean anything; the registration has tests of its own)."""
    import SimpleITK as sitk

    template, _ = template_grids()
    phantom = brain_phantom(SIZE).csf.grid
    shift = template.index_to_lps((np.asarray(template.size) - 1) / 2) - phantom.index_to_lps((np.asarray(SIZE) - 1) / 2)
    transform = sitk.AffineTransform(3)
    transform.SetTranslation(tuple(float(v) for v in shift))
    return transform


def _sphere(shape, centre, radius) -> np.ndarray:
    idx = np.indices(shape)
    return np.sum((idx - np.asarray(centre)[:, None, None, None]) ** 2, axis=0) <= radius**2


def _pair(root: Path, name: str, centre, seed: int, box: bool = True) -> None:
    tissues = brain_phantom(SIZE)
    t1 = phantom_t1(tissues, seed=seed)
    seg = np.zeros(SIZE, np.uint8)
    seg[_sphere(SIZE, centre, 7)] = 2
    seg[_sphere(SIZE, centre, 4)] = 3
    pre = t1.array.astype(np.float32)
    pre[seg == 2] *= 1.1
    pre[seg == 3] *= 0.7
    post = phantom_t1(tissues, seed=seed + 100).array.astype(np.float32)
    post_seg = np.where(seg == 2, 2, 0).astype(np.uint8)
    cavity = _sphere(SIZE, centre, 5)
    post[cavity] = 150.0
    post_seg[cavity] = 4
    for case, image, labels in ((f"{name}-000", pre, seg), (f"{name}-001", post, post_seg)):
        folder = root / case
        folder.mkdir(parents=True)
        write_volume(t1.with_array(image), folder / f"{case}-t1n.nii.gz")
        write_volume(t1.with_array(labels), folder / f"{case}-seg.nii.gz")
    if box:
        centre_ras = t1.grid.index_to_ras(centre)
        (root / f"{name}-001" / f"{name}-001.json").write_text(json.dumps(
            {"resection_box": {"centre_ras_mm": [float(v) for v in centre_ras], "size_mm": [10.0, 10.0, 10.0]}}))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    for n, centre in enumerate(CENTRES):
        _pair(root, f"P{n}", centre, seed=n, box=n != 2)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return LatentDiffusion(small_models(tmp_path_factory.mktemp("postop-models"), spacing_mm=1.0, postop=True))


@pytest.fixture(scope="module")
def library(pairs, model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("library") / "library.npz"
    build_library(pairs, model, register=_affine).save(path)
    return path


def _query(seed: int = 7, centre=(19, 26, 22)):
    tissues = brain_phantom(SIZE)
    t1 = phantom_t1(tissues, seed=seed)
    seg = np.zeros(SIZE, np.uint8)
    seg[_sphere(SIZE, centre, 7)] = 2
    seg[_sphere(SIZE, centre, 4)] = 3
    box = np.zeros(SIZE, bool)
    box[tuple(slice(c - 5, c + 6) for c in centre)] = True
    return t1, t1.with_array(seg), t1.with_array(box)


# ----------------------------------------------------------------------------- the library


def test_pairs_are_found_and_a_missing_box_comes_from_the_cavity(pairs):
    found = find_pairs(pairs)
    assert [p.name for p in found] == ["P0", "P1", "P2"]
    assert found[0].box()["size_mm"] == [10.0, 10.0, 10.0] and found[2].box() is None
    data = read_pair(found[2], register=_affine)
    assert data.box["size_mm"] == [21.0, 21.0, 21.0]  # the cavity's 11 voxels plus 5 mm each side
    outside = (data.pre.array > 0) & (data.seg == 0)  # the scale is set by the brain outside the tumor
    assert data.pre.array.max() < 3 and np.percentile(data.pre.array[outside], 99.5) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(InputError, match="no pre-/post-operative pairs"):
        find_pairs(pairs / "P0-000")


def test_the_library_round_trips_and_refuses_other_files(library, tmp_path):
    lib = CaseLibrary.load(library)
    assert lib.names == ["P0", "P1", "P2"] and lib.header["format"] == FORMAT
    case = lib.cases[0]
    assert case.pre.dtype == np.uint8 and case.cavity.dtype == bool and case.cavity.any()
    assert case.info["cavity_cm3"] == pytest.approx(_sphere(SIZE, CENTRES[0], 5).sum() / 1000, abs=1e-2)
    again = tmp_path / "again.npz"
    lib.save(again)
    other = CaseLibrary.load(again)
    for a, b in zip(lib.cases, other.cases):
        assert np.array_equal(a.tumor, b.tumor) and np.array_equal(a.post, b.post) and np.array_equal(a.cavity, b.cavity)
        assert a.patch_start == b.patch_start and a.box == b.box and np.array_equal(a.embedding, b.embedding)
    old = dict(np.load(library))
    header = json.loads(old["header"].tobytes())
    header["version"] = 99
    old["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(InputError, match="format version 99.*rebuild"):
        CaseLibrary.load(tmp_path / "old.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a case library"):
        CaseLibrary.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="no header"):
        CaseLibrary.load(tmp_path / "plain.npz")


def test_iou_retrieval_matches_a_direct_count_and_ranks_by_it():
    rng = np.random.default_rng(0)
    shape = (10, 12, 9)
    masks = [rng.random(shape) < p for p in (0.05, 0.3, 0.6, 0.0)]
    cases = [LibraryCase(f"c{n}", np.flatnonzero(m).astype(np.uint32), (0, 0, 0), np.zeros((1, 1, 1), np.uint8),
                         np.zeros((1, 1, 1), np.uint8), np.zeros((1, 1, 1), bool), rng.random(4).astype(np.float32), {})
             for n, m in enumerate(masks)]
    lib = CaseLibrary(cases)
    query = rng.random(shape) < 0.4
    expected = [np.logical_and(query, m).sum() / np.logical_or(query, m).sum() for m in masks]
    assert np.allclose(lib.ious(query), expected) and lib.ious(query)[3] == 0.0
    order = [m.name for m in lib.retrieve(3, "tumor", tumor=query)]
    assert order == [f"c{i}" for i in np.argsort(expected)[::-1][:3]]
    assert [m.name for m in lib.retrieve(2, "tumor", tumor=query, exclude=["c2"])] == [f"c{i}" for i in np.argsort(expected)[::-1] if i != 2][:2]
    best = lib.retrieve(1, "image", embedding=cases[1].embedding * 3)[0]
    assert best.name == "c1" and best.score == pytest.approx(1.0)
    first, second = lib.retrieve(2, "random", seed=5), lib.retrieve(2, "random", seed=5)
    assert first == second and len({m.name for m in first}) == 2 and all(m.score is None for m in first)
    with pytest.raises(InputError, match="k must be between 1 and the library's 4"):
        lib.retrieve(5, "tumor", tumor=query)
    with pytest.raises(InputError, match="retrieval must be one of"):
        lib.retrieve(1, "nearest", tumor=query)


def test_a_case_retrieves_itself_first_by_its_tumor(library, pairs):
    from tumorgen.postop.library import template_tumor

    lib = CaseLibrary.load(library)
    data = read_pair(find_pairs(pairs)[1], register=_affine)
    query = template_tumor(data.seg, data.pre.grid, data.affine)
    assert query.shape == template_grids()[1].size
    matches = lib.retrieve(3, "tumor", tumor=query)
    assert matches[0].name == "P1" and matches[0].score == pytest.approx(1.0)
    assert matches[1].score < 1.0


# ----------------------------------------------------------------------------- prediction


def test_the_prediction_changes_the_region_only_and_keeps_the_geometry(model, library):
    pre, seg, box = _query()
    before = pre.array.copy()
    lib = CaseLibrary.load(library)
    result = predict_postop(model, pre, box, lib, PostopSettings(k=2, **FAST), seg=seg, affine=_affine())
    assert np.array_equal(pre.array, before)  # the input is untouched
    region = result.region.array.astype(bool)
    assert region[box.array].all() and region.sum() > box.array.sum()  # the box plus its margin
    for volume in (result.mean, result.std, result.cavity, result.composite, *result.samples):
        assert volume.grid == pre.grid
    assert result.mean.dtype == pre.dtype
    for volume in (result.mean, *result.samples):
        assert np.array_equal(volume.array[~region], pre.array[~region])  # bit for bit beyond the region
    assert not np.array_equal(result.samples[0].array, result.samples[1].array)
    assert np.all(result.std.array[~region] == 0) and result.std.array[region].max() > 0
    assert set(np.unique(result.cavity.array)) <= {0, 4} and not result.cavity.array[~region].any()
    assert [m.name for m in result.matches][0] == "P0"  # its tumor sits one voxel from the query's
    assert len(result.retrieved) == 2 and result.retrieved[0]["post"].grid == pre.grid
    summary = result.summary()
    assert summary["retrieved"][0]["case"] == "P0" and summary["region_cm3"] == pytest.approx(region.sum() / 1000, abs=0.01)


def test_the_composite_pastes_the_retrieved_cavity_inside_the_region(model, library):
    pre, seg, box = _query()
    result = predict_postop(model, pre, box, CaseLibrary.load(library), PostopSettings(k=1, steps=2, samples=1), seg=seg,
                            affine=_affine())
    region = result.region.array.astype(bool)
    composite = result.composite.array
    assert np.array_equal(composite[~region], pre.array[~region])
    centre = (18, 26, 22)  # P0's cavity (post-op signal 150 on a ~1000 scale) pasted into the query
    assert composite[centre] < 0.5 * pre.array[centre]


def test_bad_inputs_are_refused_with_one_line(model, library):
    pre, seg, box = _query()
    lib = CaseLibrary.load(library)
    far = np.zeros(SIZE, bool)
    far[:3, :3, :3] = True
    off = np.zeros(SIZE, bool)
    off[33:40, 10:16, 10:16] = True  # in the brain, clear of the tumor
    cases = [
        (dict(seg=seg, box=pre.with_array(far)), "outside the brain"),
        (dict(seg=seg, box=pre.with_array(off)), "does not touch the tumor"),
        (dict(seg=seg.with_array(np.zeros(SIZE, np.uint8)), box=box), "segmentation is empty"),
        (dict(seg=seg, box=pre.with_array(np.zeros(SIZE, bool))), "holds no voxel"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            predict_postop(model, pre, kwargs["box"], lib, PostopSettings(**FAST), seg=kwargs["seg"], affine=_affine())
    with pytest.raises(InputError, match="k = 4 is larger than the case library"):
        predict_postop(model, pre, box, lib, PostopSettings(k=4, **FAST), seg=seg)
    with pytest.raises(InputError, match="not both"):
        predict_postop(model, pre, box, lib, PostopSettings(**FAST), seg=seg, concentration=seg)
    with pytest.raises(ValueError, match="cfg"):
        PostopSettings(cfg=-1.0)


def _files(folder: Path) -> dict[str, Path]:
    pre, seg, box = _query()
    return {"t1n": write_volume(pre, folder / "t1n.nii.gz"), "seg": write_volume(seg, folder / "seg.nii.gz"),
            "box": write_volume(box.with_array(box.array.astype(np.uint8)), folder / "box.nii.gz")}


def test_the_backend_task_round_trip(tmp_path, model, library):
    paths = _files(tmp_path)
    job = {"task": "postop", "inputs": {k: str(v) for k, v in paths.items()}, "device": "cpu", "output_dir": str(tmp_path / "out"),
           "params": {"weights": str(model.folder), "library": str(library), "k": 2, **FAST}}
    code, events, stderr = run_backend(job, tmp_path, timeout=300)
    assert code == 0, stderr
    result = [e for e in events if e["type"] == "result"][-1]["outputs"]
    assert set(result) == {"postop", "std", "cavity", "composite", "region", "summary", "retrieved-1-pre", "retrieved-1-post",
                           "retrieved-2-pre", "retrieved-2-post"}
    summary = json.loads(Path(result["summary"]).read_text())
    assert {m["case"] for m in summary["retrieved"]} <= {"P0", "P1", "P2"} and summary["settings"]["k"] == 2
    out = read_volume(result["postop"])
    assert out.grid == read_volume(paths["t1n"]).grid
    progress = [e["fraction"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] >= 0.98

    bad = dict(job, params={**job["params"], "k": 9}, output_dir=str(tmp_path / "bad"))
    code, events, _ = run_backend(bad, tmp_path, timeout=120)
    assert code == 2 and "larger than the case library" in [e for e in events if e["type"] == "error"][-1]["message"]
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_the_command_takes_a_box_by_corners_and_writes_all_or_nothing(tmp_path, model, library, capsys):
    paths = _files(tmp_path)
    pre = read_volume(paths["t1n"])
    a, b = pre.grid.index_to_ras((14, 21, 17)), pre.grid.index_to_ras((24, 31, 27))
    corners = ",".join(f"{v:.2f}" for v in [*a, *b])
    base = ["postop", "--t1n", str(paths["t1n"]), "--seg", str(paths["seg"]), "--weights", str(model.folder), "--library", str(library),
            "--steps", "2", "--samples", "1", "--quiet"]
    assert main(base + [f"--box={corners}", "--out", str(tmp_path / "res")]) == 0  # "=": the first corner may be negative
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["retrieved"]) == 1 and summary["network_evaluations_per_sample"] == 2 * 2  # 2 steps at strength 0.8, CFG
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [
        "composite.nii.gz", "postop-cavity.nii.gz", "postop-std.nii.gz", "postop-t1n.nii.gz", "postop.json", "region.nii.gz",
        "retrieved-1-post.nii.gz", "retrieved-1-pre.nii.gz"]
    assert main(base + ["--box", "1,2,3", "--out", str(tmp_path / "x")]) == 2
    assert "six numbers" in capsys.readouterr().err and not (tmp_path / "x").exists()
    corner = ",".join(f"{v:.2f}" for v in [*pre.grid.index_to_ras((0, 0, 0)), *pre.grid.index_to_ras((3, 3, 3))])
    assert main(base + [f"--box={corner}", "--out", str(tmp_path / "y")]) == 2
    assert "outside the brain" in capsys.readouterr().err and not (tmp_path / "y").exists()
    assert main(base + ["--box=500,500,500,510,510,510", "--out", str(tmp_path / "w")]) == 2
    assert "holds no voxel" in capsys.readouterr().err and not (tmp_path / "w").exists()
    assert main(base + ["--box-mask", str(paths["box"]), "--k", "7", "--out", str(tmp_path / "z")]) == 2
    assert "larger than the case library" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_library_build_command(tmp_path, pairs, model, capsys):
    out = tmp_path / "lib" / "cases.npz"
    assert main(["library", "build", "--data", str(pairs), "--out", str(out), "--weights", str(model.folder), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["cases"] == 3
    assert main(["library", "info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["names"] == ["P0", "P1", "P2"]
    assert main(["library", "build", "--data", str(tmp_path), "--out", str(tmp_path / "e.npz")]) == 2
    assert "no pre-/post-operative pairs" in capsys.readouterr().err and not (tmp_path / "e.npz").exists()


# ----------------------------------------------------------------------------- training


def test_training_learns_from_other_cases_composites_with_condition_dropout(pairs, model):
    from tumorgen.models.sampling import latent_encoder
    from tumorgen.postop.training import PromptDropoutSampler, postop_latent_cases

    encode = latent_encoder(model.autoencoder, model.latent_scale, model.device, model.autoencoder_roi)
    cases, record = postop_latent_cases(pairs, encode, model.down, register=_affine)
    assert len(cases) == 3 * 2  # each pair with each of the two others
    assert record["neighbours"]["P0"][0] == "P2" or record["neighbours"]["P0"][0] == "P1"
    assert all("P0" not in names for pair, names in record["neighbours"].items() if pair == "P0")
    sampler = PromptDropoutSampler(cases, (4, 4, 4), model.down, 0, ("composite", "tumor", "box"), condition_dropout=0.3,
                                   prompt_dropout=0.3)
    batch = sampler.batch(1, 16)
    again = sampler.batch(1, 16)
    assert np.array_equal(batch["condition"], again["condition"]) and batch["condition"].shape == (16, 3, 16, 16, 16)
    empty = [not batch["condition"][b].any() for b in range(16)]
    assert 0 < sum(empty) < 16  # some crops have the null condition
    plain = PromptDropoutSampler(cases, (4, 4, 4), model.down, 0, ("composite", "tumor", "box"), condition_dropout=0.0, prompt_dropout=0.0)
    assert np.array_equal(plain.batch(1, 16)["latent"], batch["latent"])  # dropout does not change the crops


# ----------------------------------------------------------------------------- scores


def test_the_scores_on_known_differences():
    from tumorgen.postop.metrics import dice, region_scores

    rng = np.random.default_rng(0)
    truth = 100.0 + 900.0 * rng.random((40, 40, 40))
    region = np.zeros(truth.shape, bool)
    region[15:25, 12:30, 18:22] = True  # smaller than MS-SSIM's three scales need: the box grows to 32 voxels
    same = region_scores(truth, truth, region)
    assert same["ssim"] == pytest.approx(1.0) and same["ms_ssim"] == pytest.approx(1.0) and same["psnr"] > 100
    lo, hi = np.percentile(truth, (0.5, 99.5))
    shifted = region_scores(truth + 0.1 * (hi - lo), truth, region)  # 0.1 of the range everywhere (clipping aside)
    raw = (truth[region] - lo) / (hi - lo)
    expected = 10 * np.log10(1 / np.mean((np.clip(raw + 0.1, 0, 1) - np.clip(raw, 0, 1)) ** 2))
    assert shifted["psnr"] == pytest.approx(expected, abs=1e-6) and shifted["ssim"] < 1.0
    a, b = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    a[:2], b[1:3] = True, True
    assert dice(a, b) == pytest.approx(0.5) and dice(a, a) == 1.0 and dice(a & False, b & False) == 1.0
    with pytest.raises(InputError, match="region is empty"):
        region_scores(truth, truth, np.zeros(truth.shape, bool))


def test_the_generated_region_is_the_box_grown_by_the_margin_within_the_brain():
    from tumorgen.postop.predict import generated_region

    box = np.zeros((30, 30, 30), bool)
    box[10:15, 12:16, 5:9] = True
    brain = np.ones(box.shape, bool)
    brain[:, :, :4] = False
    region = generated_region(box, brain, 2.0, (1.0, 1.0, 2.0))
    idx = np.argwhere(region)
    assert idx.min(0).tolist() == [8, 10, 4] and idx.max(0).tolist() == [16, 17, 9]  # 2 mm: 2 voxels (1 at 2 mm in z)
    assert region.sum() == 9 * 8 * 6


def test_the_postop_controlnet_trains_and_loads_beside_the_others(tmp_path, pairs, model):
    import shutil

    from tumorgen.models.config import load_config
    from tumorgen.models.train import TrainSettings, train_model

    folder = Path(model.folder)
    config = load_config(folder / "small.json")
    out = train_model(TrainSettings("postop", steps=2, batch=2, checkpoint_every=1, device="cpu"), config, pairs, tmp_path / "run",
                      autoencoder=folder / "autoencoder.safetensors", denoiser=folder / "denoiser.safetensors")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["model"] == "postop" and card["steps"] == 2 and card["training_data"]["pairs"]["pairs"] == ["P0", "P1", "P2"]
    bundle = tmp_path / "bundle"
    shutil.copytree(folder, bundle)
    shutil.copy(out, bundle / "postop.safetensors")
    shutil.copy(out.with_suffix(".json"), bundle / "postop.json")  # the card with its SHA-256
    loaded = LatentDiffusion(bundle)
    assert loaded.postop is not None and loaded.postop_model().config.condition == ("composite", "tumor", "box")
    assert loaded.controlnet is not loaded.postop and loaded.config.condition == ("csf", "gm", "wm", "concentration")
    plain = tmp_path / "plain"
    shutil.copytree(folder, plain)
    (plain / "postop.safetensors").unlink()
    with pytest.raises(InputError, match="no post-operative ControlNet"):
        LatentDiffusion(plain).postop_model()
