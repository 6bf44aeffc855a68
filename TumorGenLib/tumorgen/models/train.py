"""Training the models: one loop for the autoencoder, the denoiser, the ControlNet and the size regressor.

* AdamW with a cosine learning-rate schedule; an exponential moving average
  (EMA) of the weights, which is what gets saved as the model;
* bf16 autocast on CUDA, float32 on the CPU; the same code runs on both;
* a checkpoint every ``checkpoint_every`` steps in ``<out>/<model>-checkpoint/``
  (weights, EMA, and optimizer + schedule state, all safetensors; the step and
  the commands so far in ``state.json``), written
  atomically; ``resume=True`` continues from it and, because batch ``n`` is a
  function of (seed, n), reproduces the run;
* ``<out>/<model>-loss.csv`` (step, loss) and
  ``<out>/<model>-loss.png`` (Matplotlib), published together with each
  checkpoint; ``<out>`` is created with the first one, so a run that fails
  before it leaves nothing behind;
* the result ``<out>/<model>.safetensors`` with its model card;
* ``init``: start from another run's weights (a fresh schedule from the full
  rate: a warm restart after a run has annealed to zero), recorded in the card.

Losses: autoencoder L1 reconstruction + 1e-6 KL; denoiser and ControlNet the
DDPM noise-prediction MSE on latents of the frozen autoencoder (scaled to unit
variance); regressor MSE of the tumor volume (cm³ / 10) from noisy latents.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from tumorgen.atomic import check_output_folder, staged_into
from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import MODELS, ModelConfig
from tumorgen.models.weights import (load_state_into, load_training_state, load_weights, read_card, read_state, save_training_state,
                                      save_weights, sha256_of)

KL_WEIGHT = 1e-6
VOLUME_SCALE_CM3 = 10.0


@dataclass
class TrainSettings:
    model: str
    steps: int = 1000
    batch: int = 2
    lr: float = 1e-4
    weight_decay: float = 1e-2
    ema: float = 0.999
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "auto"
    #: Denoiser and ControlNet: RMS (mm) of a random fold of the tissue maps in half the condition crops (0: none).
    perturb_condition_mm: float = 0.0


class _Task:
    """What is trained and how its loss is computed, per model kind."""

    def __init__(self, kind: str, config: ModelConfig, out: Path, autoencoder: Path | None, denoiser: Path | None, device: torch.device):
        self.kind, self.config, self.device = kind, config, device
        self.perturb_mm = 0.0
        self.scheduler = N.build_scheduler(config, "ddpm")
        self.frozen: dict[str, nn.Module] = {}
        self.latent_scale = 1.0
        if kind == "autoencoder":
            self.model = N.build_autoencoder(config)
            return
        ae_path = autoencoder or out / "autoencoder.safetensors"
        ae = N.place(load_weights(N.build_autoencoder(config), ae_path), device).eval()
        self.autoencoder_sha256 = sha256_of(ae_path)
        self.latent_scale = float(read_card(ae_path).get("latent_scale", 1.0))
        self.frozen["autoencoder"] = ae
        if kind == "denoiser":
            self.model = N.build_denoiser(config)
        elif kind in ("controlnet", "postop"):
            den_path = denoiser or out / "denoiser.safetensors"
            den = N.place(load_weights(N.build_denoiser(config), den_path), device).eval()
            self.frozen["denoiser"] = den
            if kind == "postop":  # the post-operative ControlNet: its own condition channels
                self.config = config = config.for_postop()
            self.model = N.build_controlnet(config, den)
        elif kind == "synthesis":  # the label-map synthesis generator (tumorgen.synthesis)
            from tumorgen.synthesis.model import build_generator

            self.model = build_generator(config)
        else:
            self.model = N.build_regressor(config)
        for net in self.frozen.values():
            net.requires_grad_(False)

    @property
    def condition(self) -> tuple[str, ...] | None:
        return self.config.condition if self.kind in ("controlnet", "postop") else None

    @property
    def contrasts(self) -> tuple[str, ...] | None:
        """The contrasts this model trains on (the section's ``contrasts``; all when absent)."""
        wanted = getattr(self.config, "controlnet" if self.kind == "postop" else self.kind).get("contrasts")
        return tuple(wanted) if wanted else None

    def sampler(self, cases, seed: int, progress=None):
        """The batch source: image crops for the autoencoder; crops of latents encoded once for the latent models."""
        from tumorgen.models.data import CropSampler, LatentCropSampler, encode_cases, usable_cases

        if self.kind == "autoencoder":
            return CropSampler(cases, self.config.crop_for("autoencoder"), seed, None, self.contrasts)
        from tumorgen.models.sampling import latent_encoder

        if self.kind == "postop":  # ``cases`` is the data folder of pre-/post-operative pairs
            from tumorgen.postop.training import PromptDropoutSampler, postop_latent_cases

            encode = latent_encoder(self.frozen["autoencoder"], self.latent_scale, self.device, self.config.crop_for("autoencoder"))
            latent_cases, record = postop_latent_cases(cases, encode, self.config.downsampling, progress=progress)
            latent_crop = tuple(c // self.config.downsampling for c in self.config.crop_for("controlnet"))
            return PromptDropoutSampler(latent_cases, latent_crop, self.config.downsampling, seed, self.condition,
                                        condition_dropout=float(self.config.postop.get("condition_dropout", 0.1)),
                                        prompt_dropout=float(self.config.postop.get("prompt_dropout", 0.1)), record=record)

        if self.kind == "synthesis":  # ``cases`` is the data folder of healthy/tumor pairs
            from tumorgen.synthesis.training import SynthesisSampler, pairs_for_training, whole_encoder

            encode = whole_encoder(self.frozen["autoencoder"], self.latent_scale, self.device)
            multiple = 2 ** (len(self.config.synthesis["channels"]) - 1)
            pairs, record = pairs_for_training(cases, encode, self.config.downsampling, multiple, self.config.spacing_mm, progress=progress)
            if record.get("autoencoder_sha256") not in (None, self.autoencoder_sha256):
                raise InputError(f"the pairs in {cases} were encoded by another autoencoder (SHA-256 {record['autoencoder_sha256'][:12]}…)")
            sampler = SynthesisSampler(pairs, self.config.latent_crop, seed)
            sampler.record = record
            return sampler

        cases = usable_cases(cases, self.condition, self.contrasts)
        encode = latent_encoder(self.frozen["autoencoder"], self.latent_scale, self.device, self.config.crop_for("autoencoder"))
        latent_cases = encode_cases(cases, encode, self.config.downsampling, progress)
        latent_crop = tuple(c // self.config.downsampling for c in self.config.crop_for(self.kind))
        return LatentCropSampler(latent_cases, latent_crop, self.config.downsampling, seed, self.condition, self.perturb_mm)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.kind == "autoencoder":
            image = batch["image"]
            recon, mu, sigma = model(image)
            kl = 0.5 * torch.mean(mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-8) - 1)
            return torch.nn.functional.l1_loss(recon, image) + KL_WEIGHT * kl
        z = batch["latent"]
        t = torch.randint(0, self.scheduler.num_train_timesteps, (z.shape[0],), device=z.device)
        noise = torch.randn_like(z)
        noisy = self.scheduler.add_noise(z, noise, t)
        if self.kind == "denoiser":
            return torch.nn.functional.mse_loss(model(noisy, t), noise)
        if self.kind == "synthesis":
            return torch.nn.functional.mse_loss(model(torch.cat([noisy, batch["condition"].to(noisy.dtype)], dim=1), t), noise)
        if self.kind in ("controlnet", "postop"):
            cond = N.prepare_condition(self.config, batch["condition"], z.shape[2:])
            down, mid = model(x=noisy, timesteps=t, controlnet_cond=cond)
            pred = self.frozen["denoiser"](x=noisy, timesteps=t, down_block_additional_residuals=down, mid_block_additional_residual=mid)
            return torch.nn.functional.mse_loss(pred, noise)
        target = batch["volume_cm3"][:, None] / VOLUME_SCALE_CM3
        return torch.nn.functional.mse_loss(model(noisy, t), target)


#: Size of the loss-curve PNG in pixels (width, height), at :data:`LOSS_PLOT_DPI`.
LOSS_PLOT_SIZE_PX = (720, 432)
LOSS_PLOT_DPI = 100


def loss_curve_png(steps: list[int], losses: list[float], path: str | Path, *, title: str = "") -> Path:
    """The loss curve as a PNG, written atomically: the loss of every step in grey and its moving average over a
    fiftieth of the run on top, on a log scale (while every loss is positive).

    Matplotlib is imported here, not with the module: importing the trainer stays light.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tumorgen.atomic import staged_file

    # a Figure of its own on the Agg canvas, not pyplot: no global figure state and no display needed
    width, height = LOSS_PLOT_SIZE_PX
    figure = Figure(figsize=(width / LOSS_PLOT_DPI, height / LOSS_PLOT_DPI), dpi=LOSS_PLOT_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = np.asarray(steps, dtype=float)
    y = np.asarray(losses, dtype=float)
    if y.size:
        axes.plot(x, y, color="0.65", linewidth=0.8, label="loss")
        window = max(1, y.size // 50)
        if window > 1:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            axes.plot(x[window - 1:], smooth, color="C0", linewidth=1.6, label=f"mean of {window} steps")
        if np.all(y > 0):
            axes.set_yscale("log")
        axes.legend(loc="upper right")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    if title:
        axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    with staged_file(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    return path


def train_model(settings: TrainSettings, config: ModelConfig, data: str | Path, out: str | Path, *, resume: bool = False,
                autoencoder: str | Path | None = None, denoiser: str | Path | None = None,
                progress: Callable[[int, int, float], None] | None = None, command: str = "",
                status: Callable[[str], None] | None = None, init: str | Path | None = None) -> Path:
    """Train one model; returns the path of its safetensors file. See the module docstring.

    ``progress(step, steps, loss)`` follows the steps; ``status(message)`` the
    preparation before them (loading the cases; for the latent models,
    encoding every volume with the frozen autoencoder, which takes minutes at 1 mm).
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from tumorgen.models.data import load_cases

    if settings.model not in MODELS:
        raise InputError(f"unknown model {settings.model!r}; expected one of {', '.join(MODELS)}")
    if settings.steps < 1 or settings.batch < 1 or settings.checkpoint_every < 1:
        raise InputError("steps, batch and checkpoint interval must be positive")
    # created with the first checkpoint (which --resume needs kept), so a run that fails before it leaves nothing
    out = check_output_folder(out)
    device = N.resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    task = _Task(settings.model, config, out, Path(autoencoder) if autoencoder else None, Path(denoiser) if denoiser else None, device)
    task.perturb_mm = settings.perturb_condition_mm
    initialised_from = None
    if init is not None:
        if resume:
            raise InputError("give --init or --resume, not both (a resumed run continues from its checkpoint)")
        init = Path(init)
        if not init.is_file():
            raise InputError(f"--init: weights file not found: {init}")
        load_state_into(task.model, read_state(init), init)
        initialised_from = {"file": init.name, "sha256": sha256_of(init)}
    model = N.place(task.model, device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps)
    ckpt = out / f"{settings.model}-checkpoint"
    log_path = out / f"{settings.model}-loss.csv"
    start, seconds_before = 0, 0.0
    commands: list[str] = []
    if resume:
        if not (ckpt / "state.json").is_file():
            raise InputError(f"--resume: no checkpoint in {ckpt}")
        state = json.loads((ckpt / "state.json").read_text())
        if state.get("model") != settings.model or state.get("config") != config.name:
            raise InputError(f"--resume: the checkpoint in {ckpt} is for {state.get('model')} / {state.get('config')}")
        load_state_into(model, read_state(ckpt / "model.safetensors"), ckpt / "model.safetensors")
        load_state_into(ema, read_state(ckpt / "ema.safetensors"), ckpt / "ema.safetensors")
        load_training_state(optimizer, schedule, ckpt / "optimizer.safetensors")
        start, seconds_before = int(state["step"]), float(state["seconds"])
        if start >= settings.steps:
            raise InputError(f"--resume: the checkpoint in {ckpt} is at step {start}; ask for more --steps than that")
        if schedule.T_max != settings.steps:
            # a longer (or shorter) run: the cosine goes on from the current rate and reaches zero at the new last step
            schedule.T_max = settings.steps
        commands = list(state.get("commands", []))
        initialised_from = state.get("initialised_from")
    say = status or (lambda message: None)
    # the post-operative ControlNet and the synthesis generator read their pairs themselves
    cases = data if settings.model in ("postop", "synthesis") else load_cases(data, config.spacing_mm, progress=lambda f, m: say(f"{m} ({f:.0%})"))
    sampler = task.sampler(cases, settings.seed, progress=lambda f, m: say(f"{m} with the frozen autoencoder ({f:.0%})"))
    use_amp = device.type == "cuda"
    logged: list[tuple[int, float]] = []
    if resume and log_path.exists():  # a fresh run's first checkpoint replaces an old log
        with open(log_path) as handle:
            logged = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(handle) if int(r["step"]) <= start]
    started = time.perf_counter()
    model.train()

    def checkpoint(step: int) -> None:
        """The checkpoint folder, the loss log and its plot, published together."""
        with staged_into(out) as staging:
            folder = staging / ckpt.name
            folder.mkdir()
            save_weights(model, folder / "model.safetensors")
            save_weights(ema, folder / "ema.safetensors")
            save_training_state(optimizer, schedule, folder / "optimizer.safetensors")
            (folder / "state.json").write_text(json.dumps({"model": settings.model, "config": config.name, "step": step,
                                                           "seconds": seconds_before + time.perf_counter() - started,
                                                           "commands": commands + [command], "initialised_from": initialised_from}))
            with open(staging / log_path.name, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["step", "loss"])
                writer.writerows(logged)
            loss_curve_png([s for s, _ in logged], [v for _, v in logged], staging / f"{settings.model}-loss.png",
                           title=f"{settings.model} ({config.name})")

    for step in range(start + 1, settings.steps + 1):
        torch.manual_seed(settings.seed * 1_000_003 + step)  # noise and timesteps of step n do not depend on where a run resumed
        arrays = sampler.batch(step, settings.batch)
        batch = {k: N.as_input(torch.from_numpy(v), device) for k, v in arrays.items()}
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = task.loss(model, batch)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the loss became {float(loss)} at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        ema.update_parameters(model)
        logged.append((step, float(loss.detach())))
        if progress:
            progress(step, settings.steps, float(loss.detach()))
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            checkpoint(step)
    total_seconds = seconds_before + time.perf_counter() - started
    final = ema.module
    card = {
        "model": settings.model,
        "config": config.reference,
        "settings": asdict(settings),
        "steps": settings.steps,
        "final_loss": float(np.mean([v for _, v in logged[-20:]])) if logged else math.nan,
        "wall_time_s": round(total_seconds, 1),
        "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                    + (torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"),
        "training_data": _data_record(data, sampler),
        "command": command,
        "commands": commands + [command],  # every invocation of a resumed run, in order
        "latent_scale": task.latent_scale,
    }
    if initialised_from:
        card["initialised_from"] = initialised_from
    if settings.model == "autoencoder":
        card["latent_scale"] = _latent_scale(final, sampler, device)
    return save_weights(final, out / f"{settings.model}.safetensors", card)


def _data_record(data: str | Path, sampler) -> dict:
    """What the model was trained on: the cases and contrasts used, and the simulator's settings when the folder has cases.json."""
    record: dict = {"folder": Path(data).name, "cases": [c.name for c in sampler.cases]}
    if getattr(sampler, "record", None):
        record["pairs"] = sampler.record
    if hasattr(sampler, "contrasts"):
        record["contrasts"] = sampler.contrasts
    manifest = Path(data) / "cases.json"
    try:
        simulated = json.loads(manifest.read_text()) if manifest.is_file() else None
    except (OSError, ValueError):
        simulated = None
    if isinstance(simulated, dict) and "seed" in simulated:
        record["simulated"] = {k: simulated[k] for k in ("seed", "n", "spacing_mm") if k in simulated}
        record["source"] = "tumorgen simulate: the MNI152 template, deformed, with simulated tumors"
    return record


def _latent_scale(autoencoder: nn.Module, sampler, device) -> float:
    """1 / standard deviation of the latents over a few batches, so the diffusion sees unit-variance latents."""
    values = []
    autoencoder.eval()
    with torch.no_grad():
        for n in range(4):
            image = N.as_input(torch.from_numpy(sampler.batch(10_000_000 + n, 2)["image"]), device)
            values.append(autoencoder.encode(image)[0].float().flatten())
    std = float(torch.cat(values).std())
    return 1.0 / std if std > 0 else 1.0


__all__ = ["MODELS", "TrainSettings", "loss_curve_png", "train_model"]
