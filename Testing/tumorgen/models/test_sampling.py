"""LatentDiffusion (load, encode, decode, sample), the held-out metrics, and the bundled tiny weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tumorgen_testing import SMALL_MODEL_CONFIG as SMALL

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import load_config
from tumorgen.models.data import Case
from tumorgen.models.evaluate import brain_psnr, class_dice, dice, evaluate_autoencoder, threshold_classes, tissue_labels
from tumorgen.models.sampling import LatentDiffusion, bundled_weights, pad_to
from tumorgen.models.weights import read_card, save_weights


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Untrained small models saved like a training run leaves them."""
    root = tmp_path_factory.mktemp("models")
    config_path = root / "small.json"
    config_path.write_text(json.dumps(SMALL))
    config = load_config(config_path)
    torch.manual_seed(0)
    denoiser = N.build_denoiser(config)
    save_weights(N.build_autoencoder(config), root / "autoencoder.safetensors", {"config": str(config_path), "latent_scale": 2.0})
    save_weights(denoiser, root / "denoiser.safetensors", {"config": str(config_path)})
    save_weights(N.build_controlnet(config, denoiser), root / "controlnet.safetensors", {"config": str(config_path)})
    return root


def test_pad_to_pads_the_far_end_only():
    padded, shape = pad_to(np.ones((2, 5, 8, 9), np.float32), 4)
    assert padded.shape == (2, 8, 8, 12) and shape == (5, 8, 9)
    assert padded[:, :5, :, :9].min() == 1 and padded[:, 5:].max() == 0 and padded[..., 9:].max() == 0


def test_latent_diffusion_loads_a_folder_and_keeps_shapes(folder):
    model = LatentDiffusion(folder)
    assert model.latent_scale == 2.0 and model.regressor is None and model.controlnet is not None
    image = np.random.default_rng(0).random((13, 18, 11)).astype(np.float32)
    z = model.encode(image)
    assert z.shape == (1, 4, 4, 8, 4)  # padded to 16 (latents divisible by 4 for the denoiser), 4× down
    assert model.reconstruct(image).shape == image.shape
    condition = np.random.default_rng(1).random((4, 13, 18, 11)).astype(np.float32)
    a = model.sample(image.shape, condition, steps=5, seed=3)
    b = model.sample(image.shape, condition, steps=5, seed=3)
    c = model.sample(image.shape, condition, steps=5, seed=4)
    assert a.shape == image.shape and np.array_equal(a, b) and not np.array_equal(a, c)
    seen = []
    ddpm = model.sample(image.shape, None, kind="ddpm", steps=4, seed=0, progress=seen.append)
    assert np.isfinite(ddpm).all() and seen == [0.25, 0.5, 0.75, 1.0]


def test_latent_diffusion_errors_name_the_problem(folder, tmp_path):
    model = LatentDiffusion(folder)
    with pytest.raises(InputError, match="takes 4 condition maps"):
        model.sample((8, 8, 8), np.zeros((3, 8, 8, 8), np.float32), steps=2)
    with pytest.raises(InputError, match="steps must be between 1 and 1000"):
        model.sample((8, 8, 8), None, steps=0)
    with pytest.raises(InputError, match="scheduler must be ddpm or ddim"):
        model.sample((8, 8, 8), None, kind="euler")
    with pytest.raises(InputError, match="weights folder not found"):
        LatentDiffusion(tmp_path / "nowhere")
    (folder / "controlnet.safetensors").rename(tmp_path / "controlnet.safetensors")
    try:
        with pytest.raises(InputError, match="has no ControlNet"):
            LatentDiffusion(folder).sample((8, 8, 8), np.zeros((4, 8, 8, 8), np.float32), steps=2)
    finally:
        (tmp_path / "controlnet.safetensors").rename(folder / "controlnet.safetensors")


def test_brain_psnr_and_dice_values():
    truth = np.zeros((10, 10, 10), np.float32)
    truth[2:8, 2:8, 2:8] = np.linspace(0, 1, 216).reshape(6, 6, 6)
    brain = truth > 0
    pred = truth + np.float32(0.01) * brain
    # range of the truth in the brain: 1 - 1/215; MSE 1e-4
    assert brain_psnr(pred, truth, brain) == pytest.approx(10 * np.log10((1 - 1 / 215) ** 2 / 1e-4), rel=1e-5)
    assert brain_psnr(truth, truth, brain) == float("inf")
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert dice(a, b) == pytest.approx(0.5) and dice(a & False, b & False) == 1.0


def test_three_class_thresholding_recovers_tissue_levels():
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 4, (20, 20, 20))
    image = np.choose(labels - 1, [0.15, 0.55, 0.85]).astype(np.float32) + rng.normal(0, 0.03, labels.shape).astype(np.float32)
    mask = np.ones(labels.shape, bool)
    assert np.mean(threshold_classes(image, mask) == labels) > 0.998
    scores = class_dice(image, labels, mask)
    assert sorted(scores) == ["csf", "gm", "wm"] and min(scores.values()) > 0.997
    assert class_dice(np.float32(1) - image, labels, mask)["wm"] < 0.01  # inverted contrast: WM lands in the dark class
    # a tumor is left out of the comparison
    maps = {k: (labels == i).astype(np.float32) for i, k in enumerate(("csf", "gm", "wm"), start=1)}
    conc = np.zeros(labels.shape, np.float32)
    conc[:5] = 0.9
    got_labels, got_mask = tissue_labels(Case("c", {}, {**maps, "concentration": conc}, 0.008))
    assert np.array_equal(got_labels, labels) and not got_mask[:5].any() and got_mask[5:].all()


def test_autoencoder_evaluation_reports_per_contrast(folder):
    model = LatentDiffusion(folder)
    image = np.zeros((16, 16, 16), np.float32)
    image[3:13, 3:13, 3:13] = np.linspace(0.2, 1.0, 1000).reshape(10, 10, 10)
    case = Case("c", {"t1n": image, "t2w": image * 0.8}, {}, 0.064)
    result = evaluate_autoencoder(model, [case])
    assert set(result["psnr_brain_db_by_contrast"]) == {"t1n", "t2w"} and len(result["cases"]) == 2
    assert all(np.isfinite(r["psnr"]) for r in result["cases"])


# -- the bundled tiny models -------------------------------------------------
bundled = pytest.mark.skipif(not (bundled_weights() / "autoencoder.safetensors").is_file(), reason="no bundled weights")


@pytest.fixture(scope="module")
def held_out():
    """One simulated subject from a seed and prefix that training never saw."""
    import tempfile
    from pathlib import Path

    from tumorgen.models.data import load_case
    from tumorgen.simulate import SimulationOptions, simulate_subject
    from tumorgen.simulate.writer import write_case

    spacing = load_config("tiny").spacing_mm
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_case(simulate_subject([7777, 0], SimulationOptions(spacing_mm=spacing), case="TGTEST-00000-000"), Path(tmp))
        yield load_case(Path(folder), spacing)


@bundled
def test_bundled_models_load_and_their_cards_meet_the_targets():
    for name in ("autoencoder", "denoiser", "controlnet", "regressor"):
        card = read_card(bundled_weights() / f"{name}.safetensors")
        assert card["config"] == "tiny" and card["steps"] > 0 and card["command"].startswith("tumorgen train")
        assert "metrics" in card, name
    assert read_card(bundled_weights() / "autoencoder.safetensors")["metrics"]["psnr_brain_db_mean"] >= 30
    assert read_card(bundled_weights() / "controlnet.safetensors")["metrics"]["dice_sampled_wm"] >= 0.8
    total = sum(p.stat().st_size for p in bundled_weights().parent.rglob("*.safetensors"))
    assert total <= 40 * 1024**2


@bundled
def test_bundled_autoencoder_reconstructs_a_held_out_subject(held_out):
    model = LatentDiffusion()
    psnr = [brain_psnr(model.reconstruct(image), image, image > 0) for image in held_out.images.values()]
    assert min(psnr) >= 29.0 and np.mean(psnr) >= 30.0


@bundled
def test_bundled_controlnet_samples_follow_the_tissue_maps(held_out):
    model = LatentDiffusion()
    condition = np.stack([held_out.condition[k] for k in model.config.condition])
    sample = model.sample(held_out.images["t1n"].shape, condition, steps=25, seed=0)
    labels, mask = tissue_labels(held_out)
    assert class_dice(sample, labels, mask)["wm"] >= 0.75


def test_regressor_evaluation_reports_the_error_per_timestep(tmp_path):
    from tumorgen.models.evaluate import EVAL_TIMESTEPS, evaluate_regressor

    config_path = tmp_path / "small.json"
    config_path.write_text(json.dumps(SMALL))
    config = load_config(config_path)
    save_weights(N.build_autoencoder(config), tmp_path / "autoencoder.safetensors", {"config": str(config_path)})
    save_weights(N.build_regressor(config), tmp_path / "regressor.safetensors", {"config": str(config_path)})
    image = np.random.default_rng(0).random((20, 20, 20)).astype(np.float32)
    conc = np.zeros_like(image)
    conc[5:10, 5:10, 5:10] = 1.0  # 125 voxels of 0.064 cm³: 8 cm³, inside every 16³ crop that holds its centre
    result = evaluate_regressor(LatentDiffusion(tmp_path), [Case("c", {"t1n": image}, {"concentration": conc}, 0.064)], crops=2)
    assert list(result["volume_mae_cm3_by_t"]) == [str(t) for t in EVAL_TIMESTEPS] and result["crops"] == 2
    assert result["volume_mean_cm3"] == pytest.approx(8.0)
    assert all(np.isfinite(v) and v >= 0 for v in result["volume_mae_cm3_by_t"].values())
