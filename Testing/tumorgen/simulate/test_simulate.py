"""Simulated subjects: contrast relationships, invertible deformations, determinism, resection, series, files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tumorgen_testing import assert_same_geometry, backend_env

from tumorgen.biophysics.edit import box_mask
from tumorgen.errors import InputError
from tumorgen.simulate import SimulationOptions, auto_resection_box, postoperative, simulate_subject, time_series
from tumorgen.simulate.deformation import jacobian_determinant, radial_field, random_diffeomorphism
from tumorgen.simulate.subject import subject_grid
from tumorgen.simulate.writer import SUFFIXES, write_case
from tumorgen.volume_io import read_volume

OPTIONS = SimulationOptions(spacing_mm=3.0, volume_cm3=(45.0, 55.0))


@pytest.fixture(scope="module")
def subject():
    return simulate_subject(5, OPTIONS, case="TGSIM-00005-000")


def mean(image, mask):
    assert mask.sum() >= 5, "region too small to compare"
    return float(image.array[mask].mean())


def test_contrast_relationships(subject):
    seg = subject.seg.array
    labels = subject.tissues.labels().array
    healthy = seg == 0
    wm, gm, csf = (labels == 3) & healthy, (labels == 2) & healthy, (labels == 1) & healthy
    edema, enhancing, necrosis = seg == 2, seg == 3, seg == 1
    t1n, t1c, t2w, t2f = (subject.images[c] for c in ("t1n", "t1c", "t2w", "t2f"))
    # oedema: bright on T2 and FLAIR, mildly dark on T1
    assert mean(t2f, edema) > mean(t2f, wm) + 0.2 and mean(t2w, edema) > mean(t2w, wm) + 0.2
    assert mean(t1n, wm) - 0.5 < mean(t1n, edema) < mean(t1n, wm) - 0.1
    # enhancing rim brightest on t1c, above the necrotic core and white matter
    assert mean(t1c, enhancing) > mean(t1c, necrosis) + 0.3 and mean(t1c, enhancing) > mean(t1c, wm) + 0.1
    # necrosis dark on T1, bright on T2
    assert mean(t1n, necrosis) < mean(t1n, gm) and mean(t2w, necrosis) > mean(t2w, wm) + 0.3
    # CSF darkest on FLAIR, brightest of the tissues on T2
    flair_csf = mean(t2f, csf)
    assert all(flair_csf < mean(t2f, m) - 0.2 for m in (gm, wm, edema, enhancing))
    assert mean(t2w, csf) > mean(t2w, gm) > mean(t2w, wm)
    # BraTS-style normalisation: skull-stripped and in [0, 1]
    brain = subject.tissues.brain_mask().array | (seg > 0)
    for image in subject.images.values():
        assert image.array.min() >= 0 and image.array.max() <= 1 and image.array[~brain].max() == 0
        assert_same_geometry(image.grid, subject.grid)


def test_labels_follow_the_concentration(subject):
    c, seg = subject.concentration.array, subject.seg.array
    assert np.array_equal(seg > 0, c >= 0.25) and np.array_equal(np.isin(seg, (1, 3)), c >= 0.6)
    assert subject.info["regions_cm3"]["necrotic"] > 0 and subject.info["regions_cm3"]["enhancing"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_deformations_are_invertible(seed):
    grid = subject_grid(3.0)
    u = random_diffeomorphism(grid, np.random.default_rng(seed), displacement_mm=6.0)
    jac = jacobian_determinant(u)
    assert jac.min() > 0.2 and 2.0 < float(np.sqrt((u**2).sum(0)).max()) * 3.0 < 60.0  # moves things by mm, not by the head


def test_folds_move_the_gyri_and_leave_the_coarse_anatomy():
    """fold_mm: a fine deformation on top of the coarse one; without it the subject is what it always was."""
    from tumorgen.anatomy.deform import tissue_dice
    from tumorgen.simulate.subject import subject_anatomy

    options = SimulationOptions(spacing_mm=2.0, tumor=False)
    plain, _ = subject_anatomy(np.random.default_rng(3), options)
    again, _ = subject_anatomy(np.random.default_rng(3), SimulationOptions(spacing_mm=2.0, tumor=False, fold_mm=0.0))
    folded, min_jacobian = subject_anatomy(np.random.default_rng(3), SimulationOptions(spacing_mm=2.0, tumor=False, fold_mm=2.5))
    assert np.array_equal(plain.gm.array, again.gm.array)
    dice = tissue_dice(folded, plain)
    assert dice["brain"] > 0.97 and 0.75 < dice["gm"] < 0.97  # the outline stays, the folding pattern changes
    assert min_jacobian > 0
    for bad, message in ((dict(fold_mm=-1.0), "fold size"), (dict(fold_mm=9.0), "fold size"), (dict(fold_smoothness_mm=0.1), "fold smoothness")):
        with pytest.raises(InputError, match=message):
            SimulationOptions(**bad)


def test_radial_field_is_invertible_and_pushes_outwards():
    grid = subject_grid(3.0)
    centre = np.asarray(grid.size) / 2
    for strength in (0.9, 0.3, -0.5):
        u = radial_field(grid, centre, strength=strength, sigma_mm=20.0)
        assert jacobian_determinant(u).min() > 0
    u = radial_field(grid, centre, strength=0.3, sigma_mm=20.0)
    probe = tuple(int(v) for v in centre + np.array([5, 0, 0]))
    assert u[0][probe] < 0  # the value at +x comes from nearer the centre: tissue moved outwards
    with pytest.raises(ValueError):
        radial_field(grid, centre, strength=1.0, sigma_mm=20.0)


def test_mass_effect_scales_with_the_tumor_volume(subject):
    assert subject.info["deformation_min_jacobian"] > 0 and subject.info["mass_effect_min_jacobian"] > 0
    plain = simulate_subject(5, SimulationOptions(spacing_mm=3.0, volume_cm3=(45.0, 55.0), mass_effect=0.0))
    before = float((plain.concentration.array >= 0.25).sum())
    after = float((subject.concentration.array >= 0.25).sum())
    assert 1.3 < after / before < 1.7  # mass_effect 0.5: the tissue pushed aside is half the tumor's volume
    # the brain's outline stays put
    a, b = plain.tissues.brain_mask().array, subject.tissues.brain_mask().array
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.98
    assert plain.info["mass_effect_mm"] == 0 and subject.info["mass_effect_mm"] > 1.0


def test_same_seed_same_subject():
    a = simulate_subject(7, SimulationOptions(spacing_mm=4.0))
    b = simulate_subject(7, SimulationOptions(spacing_mm=4.0))
    c = simulate_subject(8, SimulationOptions(spacing_mm=4.0))
    for name in a.images:
        assert np.array_equal(a.images[name].array, b.images[name].array)
    assert np.array_equal(a.seg.array, b.seg.array) and a.info == b.info
    assert not np.array_equal(a.images["t1n"].array, c.images["t1n"].array)


def test_noise_free_references_leave_the_images_alone_and_are_the_noisy_images_without_noise(tmp_path):
    from dataclasses import replace

    from tumorgen.models.data import load_case
    from tumorgen.models.evaluate import brain_psnr
    from tumorgen.simulate.contrasts import ImagingOptions

    plain = simulate_subject(7, SimulationOptions(spacing_mm=4.0))
    options = replace(SimulationOptions(spacing_mm=4.0), imaging=ImagingOptions(reference=True))
    subject = simulate_subject(7, options, case="TGREF-00000-000")
    assert plain.references == {} and sorted(subject.references) == ["t1c-noisefree", "t1n-noisefree", "t2f-noisefree", "t2w-noisefree"]
    for name in plain.images:
        assert np.array_equal(plain.images[name].array, subject.images[name].array)  # the same noise was drawn
    image, reference = subject.images["t1n"].array, subject.references["t1n-noisefree"].array
    brain = image > 0
    assert reference.min() >= 0.0 and reference.max() <= 1.0 and np.count_nonzero(reference) > 0.95 * brain.sum()
    # white matter far from borders: the noisy image scatters around the reference by the noise, the reference only by the bias field
    wm = subject.tissues.wm.array > 0.99
    residual = image[wm] - reference[wm]
    assert abs(float(residual.mean())) < 0.01 and 0.02 < float(residual.std()) < 0.04  # σ = 0.025 × 0.80 / (range ≈ 0.7)
    assert 26.0 < brain_psnr(reference, image, brain) < 33.0
    folder = write_case(subject, tmp_path)
    assert (folder / "TGREF-00000-000-t2w-noisefree.nii.gz").is_file()
    case = load_case(folder, 4.0)
    assert sorted(case.references) == ["t1c", "t1n", "t2f", "t2w"] and sorted(case.images) == ["t1c", "t1n", "t2f", "t2w"]
    np.testing.assert_allclose(case.references["t1n"], reference, atol=1e-5)


def test_postoperative_cavity_lies_in_the_box_and_infiltration_outside_stays(subject):
    centre, size = auto_resection_box(subject, np.random.default_rng(0), extent=0.8)
    post = postoperative(subject, centre, size, margin_mm=3.0, options=OPTIONS)
    box = box_mask(subject.grid, centre, size).array
    cavity = post.seg.array == 4
    assert cavity.sum() > 50 and not (cavity & ~box).any()
    # the core inside the box is gone; infiltration outside the box stays
    assert not np.isin(post.seg.array[box & cavity], (1, 2, 3)).any()
    outside_before = (subject.seg.array > 0) & ~box
    assert (post.seg.array[outside_before] > 0).mean() > 0.8
    # the cavity looks like CSF: dark on T1 and FLAIR, bright on T2
    wm = (post.tissues.labels().array == 3) & (post.seg.array == 0)
    assert mean(post.images["t2f"], cavity) < mean(post.images["t2f"], wm) - 0.2
    assert mean(post.images["t2w"], cavity) > mean(post.images["t2w"], wm) + 0.3
    assert post.info["regions_cm3"]["cavity"] > 0 and post.info["cavity_shift_mm"] > 0
    with pytest.raises(InputError, match="does not touch"):
        postoperative(subject, [-60.0, -80.0, -40.0], [5.0, 5.0, 5.0], options=OPTIONS)


def test_time_series_grows_and_radiotherapy_slows_it(subject):
    plain = time_series(subject, [0, 20, 40], options=OPTIONS)
    treated = time_series(subject, [0, 20, 40], rt_start=5.0, alpha=0.9, tau=0.0, k=0.5, options=OPTIONS)
    volumes = [s.info["tumor_volume_cm3"] for s in plain]
    assert volumes[0] < volumes[1] < volumes[2]
    assert treated[2].info["tumor_volume_cm3"] < volumes[2]
    assert all(s.grid == subject.grid for s in plain)
    with pytest.raises(InputError):
        time_series(subject, [0, 20, 10], options=OPTIONS)


def test_written_case_keeps_the_geometry(tmp_path, subject):
    folder = write_case(subject, tmp_path, preview=True)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{subject.case}-{s}.nii.gz" for s in SUFFIXES] + [f"{subject.case}.json", f"{subject.case}-preview.png"])
    for suffix in SUFFIXES:
        volume = read_volume(folder / f"{subject.case}-{suffix}.nii.gz")
        assert_same_geometry(volume.grid, subject.grid)
    seg = read_volume(folder / f"{subject.case}-seg.nii.gz")
    assert seg.array.dtype == np.uint8 and np.array_equal(seg.array, subject.seg.array)
    info = json.loads((folder / f"{subject.case}.json").read_text())
    assert info["regions_cm3"] == subject.info["regions_cm3"]
    assert [p.name for p in tmp_path.iterdir()] == [subject.case]  # no staging folder left


def tumorgen(*args):
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, env=backend_env(), timeout=300)


def test_simulate_cli_with_series(tmp_path):
    proc = tumorgen("simulate", "--n", "2", "--spacing", "4", "--seed", "3", "--series", "30", "--out", str(tmp_path / "sims"))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "sims" / "cases.json").read_text())
    assert [c["case"] for c in manifest["cases"]] == ["TGSIM-00000-000", "TGSIM-00000-001", "TGSIM-00001-000", "TGSIM-00001-001"]
    assert manifest["cases"][1]["day"] == 30.0
    t1n = read_volume(tmp_path / "sims" / "TGSIM-00001-001" / "TGSIM-00001-001-t1n.nii.gz")
    assert t1n.grid.spacing == pytest.approx((4.0, 4.0, 4.0), rel=1e-3)
    assert "%|" in proc.stderr


def test_varied_imaging_draws_each_subjects_imaging_within_its_ranges(tmp_path):
    from tumorgen.cli.main import main
    from tumorgen.cli.simulate import VARIED, varied_imaging

    assert main(["simulate", "--n", "2", "--spacing", "4", "--healthy", "--fold", "2", "--varied-imaging", "--quiet",
                 "--out", str(tmp_path / "sims")]) == 0
    infos = [json.loads((tmp_path / "sims" / c / f"{c}.json").read_text()) for c in ("TGSIM-00000-000", "TGSIM-00001-000")]
    for n, info in enumerate(infos):
        assert info["fold_mm"] == 2.0
        assert all(VARIED[k][0] <= info["imaging"][k] <= VARIED[k][1] for k in VARIED)
        assert info["imaging"]["bias"] == round(varied_imaging([0, n]).bias, 4)  # deterministic from the subject's seed
    assert infos[0]["imaging"] != infos[1]["imaging"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0"], "--n must be"),
        (["--fold", "9"], "fold size"),
        (["--spacing", "0.1"], "spacing must be"),
        (["--healthy", "--postop"], "need a tumor"),
        (["--series", "30,10"], "increasing"),
        (["--rt-start", "10"], "applies to --series"),
        (["--volume", "5,1"], "volume_cm3 range"),
    ],
)
def test_simulate_cli_bad_input(tmp_path, args, message):
    proc = tumorgen("simulate", *args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
