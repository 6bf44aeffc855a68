"""The BraTS inpainting metrics: the challenge's own code path, values checked by hand and against its file reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tumorgen.cli.main import main
from tumorgen.errors import InputError
from tumorgen.inpainting.metrics import evaluate_files, inpainting_metrics
from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import write_volume


def _case(seed=0, shape=(30, 28, 26)):
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[3:-3, 3:-3, 3:-3] = 400 + 200 * rng.random((shape[0] - 6, shape[1] - 6, shape[2] - 6))
    mask = np.zeros(shape, bool)
    mask[10:20, 8:18, 9:17] = True
    prediction = truth.copy()
    prediction[mask] += 40 * rng.standard_normal(int(mask.sum()))
    return prediction, truth, mask


def test_mse_and_psnr_follow_the_challenge_definition():
    """Normalise by the voided image's 0.5th/99.5th percentiles, clip, then MSE and PSNR over the mask's voxels."""
    prediction, truth, mask = _case()
    values = inpainting_metrics(prediction, truth, mask)
    voided = np.where(mask, 0, truth).astype(np.float64)
    lo, hi = np.percentile(voided, [0.5, 99.5])
    lo = max(lo, 0.0)

    def norm(a):
        return (np.clip(a.astype(np.float64) * mask, lo, hi) - lo) / (hi - lo)

    p, t = norm(prediction)[mask], norm(truth)[mask]
    mse = np.mean((p - t) ** 2)
    assert values["mse"] == pytest.approx(mse, rel=1e-5, abs=1e-7)
    assert values["psnr_01"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)
    clamped = np.mean((np.clip(p, t.min(), t.max()) - t) ** 2)  # a (min, max) data range clamps both to it
    assert values["psnr"] == pytest.approx(10 * np.log10((t.max() - t.min()) ** 2 / clamped), abs=1e-4)
    assert 0 < values["ssim"] < 1
    assert inpainting_metrics(truth, truth, mask)["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_arrays_give_what_the_challenge_reader_gives_from_files(tmp_path):
    """Our arrays → tensors path against ``compute_image_quality_metrics`` reading NIfTI with nibabel: to 1e-6."""
    from inpainting.challenge_metrics_2023 import compute_image_quality_metrics

    prediction, truth, mask = _case(1)
    grid = Grid(truth.shape, (1.0, 1.0, 1.2), (3.0, -4.0, 5.0))
    files = {name: write_volume(Volume(a, grid), tmp_path / f"{name}.nii.gz")
             for name, a in (("pred", prediction), ("gt", truth), ("mask", mask.astype(np.uint8)), ("voided", np.where(mask, 0, truth)))}
    official = compute_image_quality_metrics(str(files["pred"]), str(files["mask"]), str(files["gt"]), str(files["voided"]))
    ours = evaluate_files(files["pred"], files["gt"], files["mask"])
    for key in ("ssim", "psnr", "psnr_01", "mse", "mae"):
        assert ours[key] == pytest.approx(official[key], abs=1e-6, rel=1e-6), key


@pytest.mark.parametrize("box", [(slice(2, 9), slice(0, 6), slice(20, 26)), (slice(12, 22), slice(9, 14), slice(5, 21))])
def test_the_mask_box_gives_the_whole_image_numbers(box):
    """The package's code on the mask's box (ours) against the package on the whole image, masks at the edge too."""
    import torch
    from inpainting.challenge_metrics_2023 import generate_metrics

    prediction, truth, _ = _case(2, shape=(40, 30, 26))
    mask = np.zeros(truth.shape, bool)
    mask[box] = True
    prediction = np.where(mask, truth + 60 * np.sin(np.arange(truth.size).reshape(truth.shape) / 7.0), truth).astype(np.float32)
    voided = np.where(mask, 0, truth)

    def tensor(a):
        return torch.Tensor(np.asarray(a, np.float64)).unsqueeze(0).contiguous()

    whole = generate_metrics(prediction=tensor(prediction), target=tensor(truth), normalization_tensor=tensor(voided), mask=tensor(mask).bool())
    ours = inpainting_metrics(prediction, truth, mask, voided)
    for key in ("ssim", "psnr", "psnr_01", "mse", "mae"):
        assert ours[key] == pytest.approx(float(whole[key]), abs=1e-6, rel=1e-6), key


def test_evaluate_command_prints_and_saves(tmp_path, capsys):
    prediction, truth, mask = _case(2)
    grid = Grid(truth.shape)
    paths = [write_volume(Volume(a, grid), tmp_path / f"{n}.nii.gz") for n, a in (("p", prediction), ("g", truth), ("m", mask.astype(np.uint8)))]
    assert main(["evaluate", "--pred", str(paths[0]), "--gt", str(paths[1]), "--mask", str(paths[2]), "--out", str(tmp_path / "m.json")]) == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    printed = capsys.readouterr().out
    assert saved["metrics"]["psnr"] == pytest.approx(inpainting_metrics(prediction, truth, mask)["psnr"], abs=1e-6)
    assert "psnr" in printed and "ssim" in printed
    assert main(["evaluate", "--pred", str(paths[0]), "--gt", str(paths[1]), "--mask", str(paths[0])]) == 2  # not binary
    assert "not binary" in capsys.readouterr().err


def test_bad_shapes_and_empty_masks_are_refused():
    prediction, truth, mask = _case()
    with pytest.raises(InputError, match="same shape"):
        inpainting_metrics(prediction[:-1], truth, mask)
    with pytest.raises(InputError, match="empty"):
        inpainting_metrics(prediction, truth, np.zeros_like(mask))
