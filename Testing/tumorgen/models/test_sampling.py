"""LatentDiffusion (load, encode, decode, sample), the held-out metrics, and the bundled tiny weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tumorgen_testing import SMALL_MODEL_CONFIG as SMALL
from tumorgen_testing import small_models

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import load_config
from tumorgen.models.data import Case
from tumorgen.models.evaluate import brain_psnr, class_dice, dice, evaluate_autoencoder, threshold_classes, tissue_labels
from tumorgen.models.sampling import LatentDiffusion, bundled_weights, fold, pad_to, unfold
from tumorgen.models.weights import read_card, save_weights


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Untrained small models saved like a training run leaves them."""
    return small_models(tmp_path_factory.mktemp("models"))


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


def test_fold_puts_each_image_block_into_the_channels_of_its_latent_voxel():
    x = torch.arange(2 * 8 * 4 * 12, dtype=torch.float32).reshape(1, 2, 8, 4, 12)
    folded = fold(x, 4)
    assert folded.shape == (1, 2 * 64, 2, 1, 3)
    assert torch.equal(unfold(folded, 4), x)
    block = x[0, 1, 4:8, 0:4, 8:12]  # channel 1's block at latent voxel (1, 0, 2)
    assert torch.equal(folded[0, 64:, 1, 0, 2].sort().values, block.flatten().sort().values)


def test_networks_run_on_windows_of_their_training_size(folder):
    """Encoder, decoder and denoiser + ControlNet see training-size windows; where one window alone covers a voxel, its output is the network's on that window."""
    model = LatentDiffusion(folder, overlap=0.5)  # windows every half window: rows covered by one window only are known
    net = model.autoencoder
    assert model.autoencoder_roi == (16, 16, 16) and model.denoiser_roi == (4, 4, 4)
    rng = np.random.default_rng(2)
    image = rng.random((16, 32, 16)).astype(np.float32)  # three windows along y: image rows 0–16, 8–24, 16–32
    z = model.encode(image)
    assert z.shape == (1, 4, 4, 8, 4)
    with torch.no_grad():
        first = net.encode(torch.from_numpy(image[None, None, :, :16]))[0] * model.latent_scale
        last = net.encode(torch.from_numpy(image[None, None, :, 16:]))[0] * model.latent_scale
        whole = net.encode(torch.from_numpy(image[None, None]))[0] * model.latent_scale
    torch.testing.assert_close(z[..., :2, :], first[..., :2, :])  # latent rows 0–1: the first window only
    torch.testing.assert_close(z[..., 6:, :], last[..., 2:, :])  # rows 6–7: the last window only
    assert not torch.allclose(z, whole, atol=1e-4)  # GroupNorm: the whole volume at once is another computation
    with torch.no_grad():
        decoded_first = net.decode(z[..., :4, :] / model.latent_scale)[0, 0].numpy()
    np.testing.assert_allclose(model.decode(z, image.shape)[:, :8], decoded_first[:, :8], atol=1e-5)

    condition = torch.from_numpy(rng.random((1, 4, 16, 32, 16)).astype(np.float32))
    torch.manual_seed(0)
    with torch.no_grad():  # untrained, MONAI's output and ControlNet convolutions are zero
        for p in [*model.denoiser.parameters(), *model.controlnet.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    t = 500
    eps = model.predict_noise(z, t, condition)
    with torch.no_grad():
        timesteps = torch.tensor([t])
        latents, cond = z[..., 4:, :], N.prepare_condition(model.config, condition[..., 16:, :], (4, 4, 4))
        down, mid = model.controlnet(x=latents, timesteps=timesteps, controlnet_cond=cond)
        direct = model.denoiser(x=latents, timesteps=timesteps, down_block_additional_residuals=down, mid_block_additional_residual=mid)
    assert float(direct.abs().mean()) > 1e-3
    torch.testing.assert_close(eps[..., 6:, :], direct[..., 2:, :])  # the last window, with its own part of the condition
    assert not torch.allclose(eps, model.predict_noise(z, t, None), atol=1e-4)


def test_latent_diffusion_errors_name_the_problem(folder, tmp_path):
    model = LatentDiffusion(folder)
    with pytest.raises(InputError, match="takes 4 condition maps"):
        model.sample((8, 8, 8), np.zeros((3, 8, 8, 8), np.float32), steps=2)
    with pytest.raises(InputError, match="steps must be between 1 and 1000"):
        model.sample((8, 8, 8), None, steps=0)
    with pytest.raises(InputError, match="scheduler must be ddpm or ddim"):
        model.sample((8, 8, 8), None, kind="euler")
    with pytest.raises(InputError, match="window overlap must be in"):
        LatentDiffusion(folder, overlap=1.0)
    with pytest.raises(InputError, match="weights folder not found"):
        LatentDiffusion(tmp_path / "nowhere")
    (folder / "controlnet.safetensors").rename(tmp_path / "controlnet.safetensors")
    try:
        with pytest.raises(InputError, match="has no ControlNet"):
            LatentDiffusion(folder).sample((8, 8, 8), np.zeros((4, 8, 8, 8), np.float32), steps=2)
    finally:
        (tmp_path / "controlnet.safetensors").rename(folder / "controlnet.safetensors")


def test_a_pending_model_checks_the_folder_at_once_and_hands_over_the_loaded_model(folder, tmp_path, monkeypatch):
    import threading

    from tumorgen.errors import CancelledError
    from tumorgen.models import sampling
    from tumorgen.models.pending import PendingModel

    with pytest.raises(InputError, match="weights folder not found"):
        PendingModel(tmp_path / "nowhere")
    pending = PendingModel(folder, device="cpu")
    # which networks the folder holds, known before the loading and the same as the loaded model's
    present = {n: pending.has(n) for n in ("denoiser", "controlnet", "regressor", "postop")}
    assert present == {"denoiser": True, "controlnet": True, "regressor": False, "postop": False} and not pending.ready
    assert pending.start() is pending and pending.start() is pending  # one thread however often started
    model = pending.get()
    assert pending.ready and isinstance(model, LatentDiffusion) and model.folder == folder
    assert {n: model.has(n) for n in present} == present and pending.get() is model
    unstarted = PendingModel(folder, device="cpu")
    assert isinstance(unstarted.get(), LatentDiffusion) and unstarted.ready  # never started: loaded by get() itself
    # a ControlNet without its denoiser is no ControlNet
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("autoencoder.safetensors", "controlnet.safetensors"):
        (partial / name).write_bytes((folder / name).read_bytes())
    assert not PendingModel(partial).has("controlnet")
    # what the loading raises, get() raises: a corrupt autoencoder
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "autoencoder.safetensors").write_bytes(b"not weights")
    with pytest.raises(InputError) as direct:
        LatentDiffusion(broken)
    with pytest.raises(InputError) as handed:
        PendingModel(broken).start().get()
    assert str(handed.value) == str(direct.value)
    # a cancel while waiting ends the wait
    release = threading.Event()

    class Slow:
        def __init__(self, *args, **kwargs):
            release.wait(30)

    monkeypatch.setattr(sampling, "LatentDiffusion", Slow)
    slow = PendingModel(folder).start()
    with pytest.raises(CancelledError, match="cancelled while loading the model"):
        slow.get(cancelled=lambda: True)
    assert not slow.ready
    release.set()
    assert isinstance(slow.get(), Slow)


def test_decoding_only_what_is_kept_decodes_its_latent_box(folder):
    from tumorgen.models.sampling import DECODE_MARGIN

    model = LatentDiffusion(folder)
    image = np.random.default_rng(1).random((40, 48, 36)).astype(np.float32)
    z = model.encode(image)
    whole = model.decode_batch(z, image.shape)
    assert np.array_equal(model.decode_batch(z, image.shape, where=np.zeros(image.shape, bool)), whole)  # nothing kept: all
    where = np.zeros(image.shape, bool)
    where[21:26, 17:30, 9:14] = True
    part = model.decode_batch(torch.cat([z, z]), image.shape, where=where)
    assert part.shape == (2, *image.shape) and np.array_equal(part[0], part[1], equal_nan=True)
    decoded = np.isfinite(part[0])
    found = np.argwhere(decoded)
    low, high = found.min(0), found.max(0) + 1
    assert decoded[tuple(slice(a, b) for a, b in zip(low, high))].all()  # one box, NaN beyond it
    down, window = model.down, model.autoencoder_roi
    for axis, (a, b) in enumerate(zip(low, high)):
        inside = np.flatnonzero(where.any(axis=tuple(i for i in range(3) if i != axis)))
        assert a % down == 0 and a <= inside[0] - DECODE_MARGIN * down + down - 1 and b >= inside[-1] + 1
        # the latent box grown by the margin, or one window where that is shorter
        assert b - a == max(min(window[axis], -(-image.shape[axis] // down) * down),
                            (-(-(inside[-1] + 1) // down) + DECODE_MARGIN - (inside[0] // down - DECODE_MARGIN)) * down)
    assert decoded.sum() < 0.5 * decoded.size


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
    assert all(np.isfinite(r["psnr"]) for r in result["cases"]) and "psnr_noisefree_db_mean" not in result
    # with a noise-free reference for t1n: PSNR against it, and the reference's own PSNR against the image (the noise floor)
    noisy = np.where(image > 0, image + np.random.default_rng(0).normal(0, 0.02, image.shape).astype(np.float32), 0)
    case = Case("c", {"t1n": noisy, "t2w": image}, {}, 0.064, references={"t1n": image})
    result = evaluate_autoencoder(model, [case])
    row = result["cases"][0]
    brain = noisy > 0
    assert row["noise_floor"] == pytest.approx(brain_psnr(image, noisy, brain)) and 25 < row["noise_floor"] < 45
    assert row["psnr_noisefree"] == pytest.approx(brain_psnr(model.reconstruct(noisy), image, brain))
    assert result["psnr_noisefree_db_by_contrast"] == {"t1n": row["psnr_noisefree"]} and "psnr_noisefree" not in result["cases"][1]


# -- the bundled tiny models -------------------------------------------------
bundled = pytest.mark.skipif(not (bundled_weights() / "autoencoder.safetensors").is_file(), reason="no bundled weights")


@pytest.fixture(scope="module")
def held_out():
    """One simulated subject from a seed and prefix that training never saw."""
    import tempfile
    from pathlib import Path

    from tumorgen.models.data import load_case
    from tumorgen.simulate import SimulationOptions, simulate_subject
    from tumorgen.simulate.contrasts import ImagingOptions
    from tumorgen.simulate.writer import write_case

    options = SimulationOptions(spacing_mm=load_config("tiny").spacing_mm, imaging=ImagingOptions(reference=True))
    spacing = options.spacing_mm
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_case(simulate_subject([7777, 0], options, case="TGTEST-00000-000"), Path(tmp))
        yield load_case(Path(folder), spacing)


BUNDLED = ("autoencoder", "denoiser", "controlnet")


def bundled_card(name: str) -> dict:
    return read_card(bundled_weights() / f"{name}.safetensors")


@bundled
def test_bundled_models_load_and_their_cards_record_training_and_held_out_metrics():
    model = LatentDiffusion()
    assert model.denoiser is not None and model.controlnet is not None
    for name in BUNDLED:
        card = bundled_card(name)
        assert card["config"] == "tiny" and card["steps"] > 0 and card["command"].startswith("tumorgen train")
        assert card["training_data"]["simulated"]["seed"] == 100 and card["wall_time_s"] > 0
        assert len(card["metrics"]["held_out_data"]["cases"]) >= 1, name
    assert 20 < bundled_card("autoencoder")["metrics"]["psnr_noisefree_db_mean"] < 40
    assert 0 < bundled_card("controlnet")["metrics"]["dice_sampled_wm"] <= 1
    total = sum(p.stat().st_size for p in bundled_weights().parent.rglob("*.safetensors"))
    assert total <= 40 * 1024**2


def brain_box(case, margin: int = 8) -> tuple[slice, ...]:
    """The brain's bounding box grown by ``margin`` voxels: the networks' windows see the same tissue as on the whole
    grid, at under half the voxels."""
    from tumorgen.inpainting.core import crop_box

    return crop_box(case.images["t1n"] > 0, (margin,) * 3, 1, case.images["t1n"].shape)


@bundled
def test_bundled_autoencoder_reconstructs_a_held_out_subject_as_its_card_says(held_out):
    """Another held-out subject than the card's: within 1 dB of the card's noise-free PSNR for the model's contrast (t1n)
    and the card's worst one (t2w). The other two contrasts are left to ``eval_models.py``: each costs a whole encoding."""
    model = LatentDiffusion()
    card = bundled_card("autoencoder")["metrics"]["psnr_noisefree_db_by_contrast"]
    box = brain_box(held_out)
    assert min(card, key=card.get) == "t2w"
    for contrast in ("t1n", "t2w"):
        image = held_out.images[contrast][box]
        psnr = brain_psnr(model.reconstruct(image), held_out.references[contrast][box], image > 0)
        assert psnr >= card[contrast] - 1.0, contrast


@bundled
def test_bundled_controlnet_predicts_the_noise_better_from_the_tissue_maps_as_its_card_says(held_out):
    """The ControlNet's noise estimate under the tissue maps on another held-out subject: within 15 % of the card's error
    and at least 10 % below the unconditioned denoiser's (the card: 17 % below). Sampling the whole grid as the card
    did (its sampled Dice) takes minutes; ``eval_models.py`` measures it."""
    from tumorgen.models.evaluate import _noise_mse

    model = LatentDiffusion()
    card = bundled_card("controlnet")["metrics"]
    box = brain_box(held_out)
    latents = model.encode(held_out.images["t1n"][box])
    condition = model.condition_tensor(np.stack([held_out.condition[k][box] for k in model.config.condition]))
    controlled, plain = _noise_mse(model, latents, condition, 0), _noise_mse(model, latents, None, 0)
    assert controlled <= card["noise_mse_controlnet"] * 1.15
    assert controlled <= 0.9 * plain, (controlled, plain)


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


def test_the_cached_conditioning_embedding_gives_the_same_noise_estimate(folder):
    model = LatentDiffusion(folder, overlap=0.5)
    rng = np.random.default_rng(5)
    cond = model.condition_tensor(rng.random((4, 16, 32, 16)).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((1, 4, 4, 8, 4)).astype(np.float32))
    cache: dict = {}
    for t in (900, 400, 10):
        plain = model.predict_noise(x, t, cond)
        cached = model.predict_noise(x, t, cond, cache)
        assert torch.equal(plain, cached)
    assert len(cache) == 1  # three windows in one batch: one embedding, computed once
    assert type(model.controlnet.controlnet_cond_embedding).__name__ == "ControlNetConditioningEmbedding"  # put back


@pytest.mark.parametrize("latent_shape", ["one window", "windows"])
def test_a_batch_through_the_networks_equals_each_sample_alone(folder, latent_shape):
    """B latents with one condition: each sample's noise estimate is what it gets alone (one window or several)."""
    model = LatentDiffusion(folder, overlap=0.5)
    roi = model.denoiser_roi
    shape = roi if latent_shape == "one window" else (roi[0] * 2, roi[1], roi[2])
    rng = np.random.default_rng(8)
    cond = model.condition_tensor(rng.random((4, *(n * model.down for n in shape))).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((3, 4, *shape)).astype(np.float32))
    cache: dict = {}
    together = model.predict_noise(x, 300, cond, cache)
    assert together.shape == x.shape and together.dtype == torch.float32
    for k in range(3):
        alone = model.predict_noise(x[k:k + 1], 300, cond, cache)
        assert torch.allclose(together[k:k + 1], alone, atol=1e-5)
    if latent_shape == "one window":
        assert len(cache) == 1  # one embedding for every sample and step (on windows: one per batch of windows)
    with pytest.raises(InputError, match="batch"):
        model.predict_noise(x, 300, cond.expand(2, -1, -1, -1, -1))


def test_the_embedding_cache_keeps_each_window_and_each_sample_s_own_condition(folder):
    """On windows the cache is keyed by where the windows lie: a shared condition's embeddings are computed at the
    first step and reused at the next; one condition per sample gives each sample its own, as without the cache."""
    model = LatentDiffusion(folder, overlap=0.5)
    roi = model.denoiser_roi
    shape = (roi[0] * 2, roi[1], roi[2])  # three windows along x: batches of windows that mix samples
    rng = np.random.default_rng(9)
    shared = model.condition_tensor(rng.random((4, *(n * model.down for n in shape))).astype(np.float32))
    own = torch.cat([model.condition_tensor(rng.random((4, *(n * model.down for n in shape))).astype(np.float32)) for _ in range(3)])
    x = torch.from_numpy(rng.standard_normal((3, 4, *shape)).astype(np.float32))
    for condition in (shared, own):
        cache: dict = {}
        for step, t in enumerate((700, 300)):
            assert torch.equal(model.predict_noise(x, t, condition, cache), model.predict_noise(x, t, condition))
            if step == 0:
                entries = len(cache)
        assert len(cache) == entries  # the second step computed no embedding
    for k in range(3):  # a sample's own condition, not another's window at the same place
        alone = model.predict_noise(x[k:k + 1], 300, own[k:k + 1])
        assert torch.allclose(model.predict_noise(x, 300, own, {})[k:k + 1], alone, atol=1e-5)


def test_onednn_convolutions_give_pytorch_s_values_at_batch_one():
    """PyTorch's CPU heuristic sends a batch-1 32-channel 16³ convolution to its slow native kernel; oneDNN gives
    the same values."""
    from torch.profiler import profile

    conv = N.place(torch.nn.Conv3d(32, 32, 3, padding=1), "cpu")
    plain = torch.nn.Conv3d(32, 32, 3, padding=1)
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(1, 32, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), profile() as prof:
        fast = conv(N.as_input(x, "cpu"))
    with torch.no_grad():
        reference = plain(x)
    assert torch.allclose(fast, reference, atol=1e-4)
    ran = {event.key for event in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ran and "aten::slow_conv3d_forward" not in ran


@pytest.mark.parametrize("onednn_bf16", [True, False], ids=["oneDNN bfloat16", "no oneDNN bfloat16"])
def test_bfloat16_convolutions_take_onednn_only_where_the_cpu_has_its_instructions(onednn_bf16, monkeypatch):
    """oneDNN's bfloat16 convolution needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT; elsewhere it raises, so PyTorch's
    own kernel computes it (the same values)."""
    from torch.profiler import profile

    supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if onednn_bf16 and not supported:
        pytest.skip("this CPU lacks oneDNN's bfloat16 instructions")
    assert N.onednn_dtypes() == ((torch.float32, torch.bfloat16) if supported else (torch.float32,))
    monkeypatch.setattr(N, "onednn_dtypes", lambda: (torch.float32, torch.bfloat16) if onednn_bf16 else (torch.float32,))
    conv = N.place(torch.nn.Conv3d(8, 8, 3, padding=1), "cpu").to(torch.bfloat16)
    plain = torch.nn.Conv3d(8, 8, 3, padding=1)
    plain.load_state_dict({k: v.float() for k, v in conv.state_dict().items()})
    x = torch.randn(1, 8, 12, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), profile() as prof:
        out = conv(N.as_input(x.to(torch.bfloat16), "cpu"))
    with torch.no_grad():
        reference = plain(x.to(torch.bfloat16).float())
    assert out.dtype == torch.bfloat16
    assert float((out.float() - reference).norm() / reference.norm()) < 0.02
    ran = {event.key for event in prof.key_averages()}
    # oneDNN's convolution called directly, or PyTorch's own dispatch (aten::convolution), which on a CPU with the
    # instructions may pick oneDNN itself and elsewhere computes bfloat16 in its own kernel
    assert ("aten::convolution" not in ran) == onednn_bf16
    assert "aten::mkldnn_convolution" in ran if onednn_bf16 else ("aten::mkldnn_convolution" in ran) <= supported


def test_reduced_precision_runs_the_denoiser_in_bfloat16_and_returns_float32(folder, monkeypatch):
    monkeypatch.setenv("TUMORGEN_PRECISION", "bfloat16")  # how the command line and the backend choose it
    assert LatentDiffusion(folder).dtype == torch.bfloat16
    monkeypatch.setenv("TUMORGEN_PRECISION", "half")
    with pytest.raises(InputError, match="TUMORGEN_PRECISION"):
        LatentDiffusion(folder)
    monkeypatch.delenv("TUMORGEN_PRECISION")
    full = LatentDiffusion(folder)
    assert full.dtype == torch.float32
    half = LatentDiffusion(folder, precision="bfloat16")
    assert half.dtype == torch.bfloat16 and next(half.denoiser.parameters()).dtype == torch.bfloat16
    assert next(half.autoencoder.parameters()).dtype == torch.float32
    rng = np.random.default_rng(9)
    roi = full.denoiser_roi
    cond = full.condition_tensor(rng.random((4, *(n * full.down for n in roi))).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((2, 4, *roi)).astype(np.float32))
    a, b = full.predict_noise(x, 500, cond, {}), half.predict_noise(x, 500, cond, {})
    assert b.dtype == torch.float32
    assert float((a - b).norm() / a.norm()) < 0.05
    with pytest.raises(InputError, match="precision"):
        LatentDiffusion(folder, precision="int8")
