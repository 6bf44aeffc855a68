"""`tumorgen train`: the loss goes down, checkpoints resume exactly, cards say what was trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tumorgen_testing import SMALL_MODEL_CONFIG as SMALL
from tumorgen_testing import backend_env

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import load_config
from tumorgen.models.train import LOSS_PLOT_SIZE_PX, TrainSettings, loss_curve_png, train_model
from tumorgen.models.weights import load_weights, read_card, read_state
from tumorgen.simulate import SimulationOptions, simulate_subject
from tumorgen.simulate.writer import write_case


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cases")
    for i in range(2):
        write_case(simulate_subject([0, i], SimulationOptions(spacing_mm=4.0), case=f"TGSIM-{i:05d}-000"), root)
    (root / "cases.json").write_text(json.dumps({"seed": 0, "n": 2, "spacing_mm": 4.0, "cases": []}))
    return root


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.json"
    path.write_text(json.dumps(SMALL))
    return load_config(path)


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory, data, config):
    out = tmp_path_factory.mktemp("weights")
    train_model(TrainSettings("autoencoder", steps=30, lr=1e-3, checkpoint_every=10), config, data, out)
    return out


def losses(path):
    rows = path.read_text().splitlines()[1:]
    return [float(r.split(",")[1]) for r in rows]


def test_autoencoder_loss_goes_down_and_the_card_says_what_was_trained(autoencoder, data, config):
    curve = losses(autoencoder / "autoencoder-loss.csv")
    assert len(curve) == 30 and np.mean(curve[-5:]) < 0.7 * np.mean(curve[:5])
    card = read_card(autoencoder / "autoencoder.safetensors")
    # a config that is not bundled is named by its file, so the folder loads without it being installed
    assert card["steps"] == 30 and card["config"] == str(Path(config.source).resolve())
    assert card["training_data"]["cases"] == ["TGSIM-00000-000", "TGSIM-00001-000"]
    assert card["latent_scale"] > 0 and card["wall_time_s"] > 0 and "CPU" in card["hardware"]
    assert card["training_data"]["simulated"] == {"seed": 0, "n": 2, "spacing_mm": 4.0} and card["training_data"]["contrasts"] == ["t1c", "t1n", "t2f", "t2w"]
    assert (autoencoder / "autoencoder-loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(autoencoder / "autoencoder-loss.png") as plot:
        assert plot.size == LOSS_PLOT_SIZE_PX and plot.info["Software"].startswith("Matplotlib")


def test_loss_curve_is_a_matplotlib_plot_written_atomically(tmp_path):
    steps = list(range(1, 201))
    curve = list(np.exp(-np.linspace(0.0, 3.0, 200)) + 0.01 * np.random.default_rng(0).random(200))
    out = loss_curve_png(steps, curve, tmp_path / "autoencoder-loss.png", title="autoencoder (test)")
    assert out == tmp_path / "autoencoder-loss.png" and [p.name for p in tmp_path.iterdir()] == ["autoencoder-loss.png"]
    with Image.open(out) as plot:
        assert plot.format == "PNG" and plot.size == (720, 432)
        assert plot.info["Software"].startswith("Matplotlib version")  # Matplotlib's own stamp in the PNG
        pixels = np.asarray(plot.convert("RGB"))
    assert (pixels == 255).all(axis=-1).mean() > 0.5  # a white figure ...
    assert (pixels == (31, 119, 180)).all(axis=-1).sum() > 200  # ... with the moving average in Matplotlib's first colour
    assert (pixels == (166, 166, 166)).all(axis=-1).sum() > 50  # and the raw loss in grey (0.65)


def test_importing_the_trainer_does_not_import_matplotlib():
    code = "import sys, tumorgen.models.train; print('matplotlib' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=backend_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_latent_models_train_on_the_frozen_autoencoder(tmp_path, autoencoder, data, config):
    import shutil

    shutil.copy(autoencoder / "autoencoder.safetensors", tmp_path)
    shutil.copy(autoencoder / "autoencoder.json", tmp_path)
    for model in ("denoiser", "controlnet", "regressor"):
        said = []
        path = train_model(TrainSettings(model, steps=12, lr=1e-3, checkpoint_every=6), config, data, tmp_path, status=said.append)
        assert said[0].startswith("loaded ") and said[-1].endswith("with the frozen autoencoder (100%)") and "encoded" in said[-1]
        curve = losses(tmp_path / f"{model}-loss.csv")
        assert len(curve) == 12 and all(np.isfinite(curve))
        assert read_card(path)["model"] == model
    regressor = losses(tmp_path / "regressor-loss.csv")
    assert np.mean(regressor[-4:]) < np.mean(regressor[:4])
    net = load_weights(N.build_controlnet(config), tmp_path / "controlnet.safetensors")
    assert sum(p.numel() for p in net.parameters()) > 0


def test_resume_reproduces_an_uninterrupted_run(tmp_path, data, config):
    straight = train_model(TrainSettings("autoencoder", steps=8, lr=1e-3, checkpoint_every=4), config, data, tmp_path / "a")

    class Stop(Exception):
        pass

    def interrupt(step, total, loss):
        if step == 6:
            raise Stop

    with pytest.raises(Stop):
        train_model(TrainSettings("autoencoder", steps=8, lr=1e-3, checkpoint_every=4), config, data, tmp_path / "b", progress=interrupt)
    assert json.loads((tmp_path / "b" / "autoencoder-checkpoint" / "state.json").read_text())["step"] == 4
    resumed = train_model(TrainSettings("autoencoder", steps=8, lr=1e-3, checkpoint_every=4), config, data, tmp_path / "b", resume=True)
    a, b = read_state(straight), read_state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(tmp_path / "a" / "autoencoder-loss.csv") == losses(tmp_path / "b" / "autoencoder-loss.csv")


def test_resume_with_more_steps_extends_the_run(tmp_path, data, config):
    train_model(TrainSettings("autoencoder", steps=4, lr=1e-3, checkpoint_every=2), config, data, tmp_path, command="first")
    with pytest.raises(InputError, match="is at step 4; ask for more --steps"):
        train_model(TrainSettings("autoencoder", steps=4, lr=1e-3, checkpoint_every=2), config, data, tmp_path, resume=True)
    seen = []
    path = train_model(TrainSettings("autoencoder", steps=6, lr=1e-3, checkpoint_every=2), config, data, tmp_path, resume=True,
                       command="second", progress=lambda step, total, loss: seen.append(step))
    card = read_card(path)
    assert seen == [5, 6] and card["steps"] == 6 and card["commands"] == ["first", "second"] and card["command"] == "second"
    assert len(losses(tmp_path / "autoencoder-loss.csv")) == 6


def test_init_starts_from_given_weights_with_a_fresh_schedule(tmp_path, autoencoder, data, config):
    start = autoencoder / "autoencoder.safetensors"
    path = train_model(TrainSettings("autoencoder", steps=1, lr=1e-12, checkpoint_every=1), config, data, tmp_path, init=start,
                       command="warm")
    before, after = read_state(start), read_state(path)
    assert before.keys() == after.keys() and all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    origin = {"file": "autoencoder.safetensors", "sha256": read_card(start)["sha256"]}
    assert read_card(path)["initialised_from"] == origin
    extended = train_model(TrainSettings("autoencoder", steps=2, lr=1e-12, checkpoint_every=1), config, data, tmp_path, resume=True)
    assert read_card(extended)["initialised_from"] == origin  # a resumed run still says where it started
    with pytest.raises(InputError, match="--init or --resume, not both"):
        train_model(TrainSettings("autoencoder", steps=2), config, data, tmp_path, init=start, resume=True)
    with pytest.raises(InputError, match="weights file not found"):
        train_model(TrainSettings("autoencoder", steps=2), config, data, tmp_path / "x", init=tmp_path / "none.safetensors")
    with pytest.raises(InputError, match="does not fit"):
        train_model(TrainSettings("regressor", steps=2), config, data, tmp_path / "y", autoencoder=start, init=start)


def test_training_errors_name_the_problem(tmp_path, data, config):
    with pytest.raises(InputError, match="no checkpoint"):
        train_model(TrainSettings("autoencoder", steps=2), config, data, tmp_path, resume=True)
    with pytest.raises(InputError, match="no case folders"):
        train_model(TrainSettings("autoencoder", steps=2), config, tmp_path, tmp_path / "out")
    with pytest.raises(InputError, match="model card .* is missing"):
        train_model(TrainSettings("denoiser", steps=2), config, data, tmp_path / "empty")
    with pytest.raises(InputError, match="unknown model"):
        train_model(TrainSettings("vae", steps=2), config, data, tmp_path)
    assert list(tmp_path.iterdir()) == []  # the output folders are made with the first checkpoint, not before


def test_a_run_that_fails_before_its_first_checkpoint_leaves_an_old_run_as_it_was(tmp_path, data, config):
    out = tmp_path / "run"
    train_model(TrainSettings("autoencoder", steps=2, lr=1e-3, checkpoint_every=1), config, data, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    class Stop(Exception):
        pass

    def interrupt(step, total, loss):
        raise Stop

    with pytest.raises(Stop):
        train_model(TrainSettings("autoencoder", steps=4, lr=1e-3, checkpoint_every=2), config, data, out, progress=interrupt)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # the old loss log too


def test_train_cli(tmp_path, data):
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    cmd = [sys.executable, "-m", "tumorgen.cli.main", "train", "autoencoder", "--data", str(data), "--config", str(config),
           "--out", str(tmp_path / "w"), "--steps", "3", "--checkpoint-every", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=backend_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["weights"].endswith("autoencoder.safetensors") and "loss" in proc.stderr
    assert "tumorgen train autoencoder" in read_card(tmp_path / "w" / "autoencoder.safetensors")["command"]
    bad = subprocess.run(cmd[:-4] + ["--steps", "3", "--config", "huge"], capture_output=True, text=True, env=backend_env(), timeout=300)
    assert bad.returncode == 2 and "unknown model config" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = subprocess.run(cmd + ["--perturb-condition", "2"], capture_output=True, text=True, env=backend_env(), timeout=300)
    assert bad.returncode == 2 and "applies to the denoiser and the ControlNet" in bad.stderr


def test_latent_crops_line_up_with_their_condition_crops():
    from tumorgen.models.data import Case, LatentCropSampler, encode_cases

    rng = np.random.default_rng(0)
    image = rng.random((30, 26, 22)).astype(np.float32)
    conc = np.zeros_like(image)
    conc[20:24, 10:14, 5:9] = 1.0
    case = Case("c", {"t1n": image}, {"csf": image, "concentration": conc}, 0.001)

    def encode(array):  # a stand-in encoder: every 4th voxel, as 4 channels
        return np.repeat(array[:, :, ::4, ::4, ::4], 4, axis=1)

    (latent_case,) = encode_cases([case], encode, 4)
    assert latent_case.latents[0].shape == (4, 8, 7, 6) and latent_case.condition["csf"].shape == (32, 28, 24)  # padded to ×4
    sampler = LatentCropSampler([latent_case], (4, 4, 4), 4, seed=1, condition=("csf", "concentration"))
    batch = sampler.batch(5, 6)
    assert batch["latent"].shape == (6, 4, 4, 4, 4) and batch["condition"].shape == (6, 2, 16, 16, 16)
    assert np.array_equal(batch["latent"][:, 0], batch["condition"][:, 0, ::4, ::4, ::4])  # same place in both grids
    assert np.array_equal(sampler.batch(5, 6)["latent"], batch["latent"]) and not np.array_equal(sampler.batch(6, 6)["latent"], batch["latent"])
    assert np.allclose(batch["volume_cm3"], (batch["condition"][:, 1] >= 0.25).sum(axis=(1, 2, 3)) * 0.001)
    assert batch["volume_cm3"].max() == pytest.approx(0.064)  # half of the crops are centred on the tumor


def test_perturbed_conditions_move_the_tissue_maps_by_the_asked_amount_and_leave_the_tumor():
    from scipy import ndimage

    from tumorgen.models.data import Case, LatentCropSampler, encode_cases, perturb_tissues

    # a smooth ramp: the displacement a voxel saw is its value change over the ramp's slope (1 per voxel)
    ramp = np.broadcast_to(np.arange(40, dtype=np.float32)[:, None, None], (40, 40, 40)).copy()
    conc = np.zeros_like(ramp)
    conc[10:20, 10:20, 10:20] = 1.0
    moved = perturb_tissues(np.stack([ramp, conc]), ("wm", "concentration"), 2.0, np.random.default_rng(3))
    shift = (moved[0] - ramp)[8:-8, 8:-8, 8:-8]  # away from the clamped edges
    assert 0.8 < float(np.sqrt(np.mean(shift**2))) < 1.6  # one of three axes of a 2 mm RMS fold: 2/√3 ≈ 1.15 mm
    assert np.array_equal(moved[1], conc)  # the tumor stays where the image has it
    assert np.abs(ndimage.laplace(shift)).mean() < 0.2  # smooth: a fold, not voxel noise

    case = Case("c", {"t1n": ramp}, {"wm": ramp, "concentration": conc}, 0.001)
    (latent_case,) = encode_cases([case], lambda a: np.repeat(a[:, :, ::4, ::4, ::4], 4, axis=1), 4)
    plain = LatentCropSampler([latent_case], (4, 4, 4), 4, seed=1, condition=("wm", "concentration"))
    folded = LatentCropSampler([latent_case], (4, 4, 4), 4, seed=1, condition=("wm", "concentration"), perturb_mm=2.0)
    a, b = plain.batch(2, 8), folded.batch(2, 8)
    changed = [not np.array_equal(x, y) for x, y in zip(a["condition"][:, 0], b["condition"][:, 0])]
    assert 0 < sum(changed) < 8  # about half the crops
    assert np.array_equal(a["latent"], b["latent"]) and np.array_equal(a["condition"][:, 1], b["condition"][:, 1])
