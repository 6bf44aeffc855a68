"""The MONAI networks of the latent diffusion model, their training signal, and safe weight files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import available_configs, load_config
from tumorgen.models.maisi import load_maisi_autoencoder
from tumorgen.models.weights import load_foreign_checkpoint, load_weights, read_card, save_weights
from tumorgen_testing import SMALL_MODEL_CONFIG as SMALL



@pytest.fixture
def config(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps(SMALL))
    return load_config(path)


def volume(seed=0, channels=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, 16)
    blob = torch.exp(-(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2) * 3)
    return (blob + 0.05 * torch.rand(1, channels, 16, 16, 16, generator=g)).clamp(0, 1)


def train(model_step, params, steps=25, lr=3e-3):
    torch.manual_seed(0)
    opt = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model_step()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_bundled_configs_load_with_4x_downsampling_and_the_paper_schedule():
    assert {"tiny", "small", "full"} <= set(available_configs())
    for name in ("tiny", "small", "full"):
        c = load_config(name)
        assert c.downsampling == 4 and c.latent_channels == 4 and c.condition == ("csf", "gm", "wm", "concentration")
        assert c.scheduler == {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "schedule": "linear_beta"}
    with pytest.raises(InputError, match="unknown model config"):
        load_config("huge")


def test_the_small_config_sits_between_tiny_and_full_and_fits_the_bundle_alone():
    """Its autoencoder, denoiser and ControlNet: more parameters than tiny's, float32 weights within the 40 MB bundle."""
    def count(name):
        c = load_config(name)
        denoiser = N.build_denoiser(c)
        parts = (N.build_autoencoder(c), denoiser, N.build_controlnet(c, denoiser))
        return [sum(p.numel() for p in m.parameters()) for m in parts]

    tiny, small = count("tiny"), count("small")
    assert all(s > t for s, t in zip(small, tiny))
    assert 4 * sum(small) <= 40e6 and load_config("small").crop_for("autoencoder") == (48, 48, 48)


def test_autoencoder_maps_one_channel_to_four_latents_and_learns(config):
    torch.manual_seed(0)
    ae = N.build_autoencoder(config)
    x = volume()
    z = ae.encode_stage_2_inputs(x)
    assert z.shape == (1, 4, 4, 4, 4)
    # the posterior starts narrow (σ = e^-5), so sampled latents are not drowned in noise early in training
    with torch.no_grad():
        assert float(ae.encode(x)[1].mean()) == pytest.approx(np.exp(-5), rel=0.1)  # the bias sets it; the weights add a little
    losses = train(lambda: torch.nn.functional.l1_loss(ae.reconstruct(x), x), ae.parameters())
    assert losses[-1] < 0.6 * losses[0]


def test_controlled_denoiser_learns_with_the_condition_on_the_latent_grid(config):
    torch.manual_seed(0)
    denoiser = N.build_denoiser(config)
    controlnet = N.build_controlnet(config, denoiser)
    model = N.ControlledDenoiser(denoiser, controlnet, config)
    scheduler = N.build_scheduler(config, "ddpm")
    assert len(scheduler.betas) == 1000 and float(scheduler.betas[0]) == pytest.approx(1e-4) and float(scheduler.betas[-1]) == pytest.approx(0.02)
    condition = volume(1, channels=4)
    assert N.condition_to_latent(condition, (4, 4, 4)).shape == (1, 4, 4, 4, 4)
    z = torch.randn(2, 4, 4, 4, 4)
    noise = torch.randn_like(z)
    t = torch.tensor([100, 600])
    noisy = scheduler.add_noise(z, noise, t)
    cond = condition.expand(2, -1, -1, -1, -1)
    losses = train(lambda: torch.nn.functional.mse_loss(model(noisy, t, cond), noise), model.parameters())
    assert losses[-1] < 0.7 * losses[0]
    # the ControlNet starts as a no-op (zero convolutions): with a fresh one the output is the plain denoiser's
    fresh = N.ControlledDenoiser(denoiser, N.build_controlnet(config, denoiser), config)
    with torch.no_grad():
        assert torch.allclose(fresh(noisy, t, cond), denoiser(noisy, t), atol=1e-6)


def test_embedding_resampling_takes_the_condition_on_the_image_grid(tmp_path):
    path = tmp_path / "embedding.json"
    path.write_text(json.dumps({**SMALL, "controlnet": {**SMALL["controlnet"], "condition_resampling": "embedding",
                                                         "conditioning_embedding_num_channels": [4, 8, 8]}}))
    config = load_config(path)
    torch.manual_seed(0)
    denoiser = N.build_denoiser(config)
    model = N.ControlledDenoiser(denoiser, N.build_controlnet(config, denoiser), config)
    z, noise, t = torch.randn(2, 4, 4, 4, 4), torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 600])
    cond = torch.cat([volume(1, channels=4), volume(2, channels=4)])  # 16³: the latent grid × 4
    assert N.prepare_condition(config, cond, (4, 4, 4)) is cond
    with pytest.raises(ValueError, match=r"expected \(16, 16, 16\)"):
        N.prepare_condition(config, cond[:, :, :8], (4, 4, 4))
    losses = train(lambda: torch.nn.functional.mse_loss(model(z, t, cond), noise), model.parameters())
    assert losses[-1] < 0.7 * losses[0]
    # with one embedding level per autoencoder level only: anything else is a config error naming the count
    path.write_text(json.dumps({**SMALL, "controlnet": {**SMALL["controlnet"], "condition_resampling": "embedding"}}))
    with pytest.raises(InputError, match="needs 3 conditioning_embedding_num_channels"):
        load_config(path)
    path.write_text(json.dumps({**SMALL, "controlnet": {**SMALL["controlnet"], "condition_resampling": "bilinear"}}))
    with pytest.raises(InputError, match="nearest or embedding"):
        load_config(path)


def test_condition_channels_are_configurable(config):
    wider = config.with_condition(["csf", "gm", "wm", "concentration", "resection"])
    net = N.build_controlnet(wider)
    out = net(x=torch.randn(1, 4, 4, 4, 4), timesteps=torch.tensor([5]), controlnet_cond=torch.rand(1, 5, 4, 4, 4))
    assert len(out[0]) > 0


def test_regressor_predicts_a_volume_from_noisy_latents(config):
    torch.manual_seed(0)
    reg = N.build_regressor(config)
    x = torch.randn(4, 4, 4, 4, 4)
    t = torch.tensor([0, 100, 500, 900])
    target = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert reg(x, t).shape == (4, 1)
    losses = train(lambda: torch.nn.functional.mse_loss(reg(x, t), target), reg.parameters())
    assert losses[-1] < 0.3 * losses[0]


def test_ddim_sampling_runs_with_the_controlnet(config):
    torch.manual_seed(0)
    denoiser = N.build_denoiser(config)
    model = N.ControlledDenoiser(denoiser, N.build_controlnet(config, denoiser), config).eval()
    scheduler = N.build_scheduler(config, "ddim")
    scheduler.set_timesteps(10)
    x = torch.randn(1, 4, 4, 4, 4)
    cond = volume(2, channels=4)
    with torch.no_grad():
        for t in scheduler.timesteps:
            x, _ = scheduler.step(model(x, torch.tensor([int(t)]), cond), t, x)
    assert torch.isfinite(x).all() and len(scheduler.timesteps) == 10


def test_save_load_round_trip_is_exact(tmp_path, config):
    torch.manual_seed(0)
    ae = N.build_autoencoder(config).eval()
    path = save_weights(ae, tmp_path / "ae.safetensors", {"config": "test", "steps": 0})
    card = read_card(path)
    assert card["steps"] == 0 and len(card["sha256"]) == 64 and card["parameters"] == sum(p.numel() for p in ae.state_dict().values())
    torch.manual_seed(1)
    again = load_weights(N.build_autoencoder(config).eval(), path)
    x = volume()
    with torch.no_grad():
        assert torch.equal(ae.reconstruct(x), again.reconstruct(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.json", "ae.safetensors", "test.json"]  # nothing half-written


def test_corrupt_and_mismatched_weights_name_the_file(tmp_path, config):
    ae = N.build_autoencoder(config)
    path = save_weights(ae, tmp_path / "ae.safetensors")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="ae.safetensors is corrupt"):
        load_weights(N.build_autoencoder(config), path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_weights(N.build_autoencoder(config), path, check_card=False)
    # a checkpoint of another size
    other = dict(SMALL, autoencoder=dict(SMALL["autoencoder"], channels=[8, 16, 16]))
    (tmp_path / "other.json").write_text(json.dumps(other))
    big = save_weights(N.build_autoencoder(load_config(tmp_path / "other.json")), tmp_path / "big.safetensors")
    with pytest.raises(InputError, match=r"big.safetensors does not fit this AutoencoderKL: .* has shape"):
        load_weights(N.build_autoencoder(config), big)
    with pytest.raises(InputError, match="model card .* is missing"):
        load_weights(ae, tmp_path / "missing.safetensors")


def test_foreign_checkpoints_are_never_unpickled(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "extra": Payload()}, path)
    with pytest.raises(InputError, match="cannot be read safely"):
        load_foreign_checkpoint(path)
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, good)
    assert torch.equal(load_foreign_checkpoint(good)["w"], torch.ones(2))


def test_maisi_autoencoder_loads_from_a_local_bundle(tmp_path):
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import AutoencoderKlMaisi

    definition = {"_target_": "monai.apps.generation.maisi.networks.autoencoderkl_maisi.AutoencoderKlMaisi", "spatial_dims": 3,
                  "in_channels": 1, "out_channels": 1, "latent_channels": 4, "num_channels": [8, 8, 8], "num_res_blocks": [1, 1, 1],
                  "norm_num_groups": 4, "norm_eps": 1e-6, "attention_levels": [False, False, False], "with_encoder_nonlocal_attn": False,
                  "with_decoder_nonlocal_attn": False, "use_checkpointing": False, "use_convtranspose": False, "norm_float16": False,
                  "num_splits": 1, "dim_split": 1}
    (tmp_path / "configs").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "configs" / "config_maisi.json").write_text(json.dumps({"autoencoder_def": definition}))
    torch.manual_seed(0)
    original = AutoencoderKlMaisi(**{k: v for k, v in definition.items() if k != "_target_"}).eval()
    torch.save(original.state_dict(), tmp_path / "models" / "autoencoder.pt")
    loaded = load_maisi_autoencoder(tmp_path)
    x = volume()
    with torch.no_grad():
        assert torch.equal(original.encode(x)[0], loaded.encode(x)[0])  # the latent mean (sampling would add noise)
    (tmp_path / "models" / "autoencoder.pt").unlink()
    with pytest.raises(InputError, match="no models/autoencoder"):
        load_maisi_autoencoder(tmp_path)


def test_training_state_round_trips_without_pickle_and_names_a_misfit(tmp_path, config):
    from tumorgen.models.weights import load_training_state, save_training_state

    def make(net):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

    ae = N.build_autoencoder(config)
    opt, sched = make(ae)
    ae(volume())[0].mean().backward()
    opt.step()
    sched.step()
    path = save_training_state(opt, sched, tmp_path / "optimizer.safetensors")
    opt2, sched2 = make(N.build_autoencoder(config))
    load_training_state(opt2, sched2, path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"] and sched.state_dict() == sched2.state_dict()
    assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for i in a["state"] for k in a["state"][i])
    with pytest.raises(InputError, match="optimizer.safetensors does not fit this optimizer"):
        load_training_state(*make(N.build_regressor(config)), path)


def test_cpu_placement_is_channels_last_and_changes_no_values():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.GroupNorm(2, 4), torch.nn.Conv3d(4, 2, 3, padding=1))
    x = torch.randn(2, 1, 8, 8, 8)
    expected = net(x)
    placed = N.place(net, "cpu")
    assert placed[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    fed = N.as_input(x, "cpu")
    assert fed.is_contiguous(memory_format=torch.channels_last_3d) and N.as_input(torch.zeros(3, 4), "cpu").shape == (3, 4)
    torch.testing.assert_close(placed(fed), expected, rtol=1e-5, atol=1e-5)
    assert N.memory_format("cuda") == torch.contiguous_format
