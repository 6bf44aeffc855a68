"""``tumorgen train``: train the autoencoder, denoiser, ControlNet or size regressor."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm

from tumorgen.device import add_device_argument
from tumorgen.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    from tumorgen.models.config import MODELS

    p = subparsers.add_parser(
        "train",
        help="train a model (autoencoder, denoiser, controlnet, regressor, postop, synthesis) on simulated or BraTS-format cases",
        description="Train one of the latent diffusion model's networks on case folders (tumorgen simulate's output or "
        "BraTS-format folders). The autoencoder comes first; the denoiser and the regressor need it (--autoencoder, default "
        "OUT/autoencoder.safetensors), the ControlNet also needs the denoiser. The post-operative ControlNet (postop) reads "
        "pre-/post-operative pairs, the label-map synthesis generator (synthesis) healthy/tumor pairs from tumorgen simulate "
        "--healthy-reference; both need the autoencoder. Writes OUT/<model>.safetensors (EMA weights) "
        "with its model card, OUT/<model>-loss.csv and -loss.png, and a checkpoint every --checkpoint-every steps that "
        "--resume continues from.",
        epilog="example: tumorgen simulate --n 20 --out sims && tumorgen train autoencoder --data sims --config tiny --out weights",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--data", required=True, help="folder of case folders")
    p.add_argument("--config", default="tiny", help="model size: tiny, small, full, or a JSON file (default tiny)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    p.add_argument("--batch", type=int, default=2, help="crops per step (default 2)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate, cosine-annealed (default 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed and data give the same run (default 0)")
    p.add_argument("--checkpoint-every", type=int, default=100, metavar="N", help="checkpoint interval in steps (default 100)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/<model>-checkpoint")
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights of the same model (e.g. a finished run's "
                   "<model>.safetensors) with a fresh schedule: a warm restart")
    p.add_argument("--perturb-condition", type=float, default=0.0, metavar="MM",
                   help="denoiser and ControlNet: pull the tissue maps of half the condition crops through a random fold of "
                   "this RMS (σ 4 mm), so the model learns to lean on the image where the maps are wrong (default 0: none)")
    p.add_argument("--save-pairs", metavar="FILE.npz", help="synthesis only: encode the healthy/tumor pairs of --data with the "
                   "autoencoder, save them to FILE.npz and stop (a later --data FILE.npz trains on them, elsewhere too)")
    p.add_argument("--autoencoder", help="autoencoder weights (default OUT/autoencoder.safetensors)")
    p.add_argument("--denoiser", help="denoiser weights for the ControlNet (default OUT/denoiser.safetensors)")
    add_device_argument(p, help="device to train on")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tumorgen.models.config import load_config
    from tumorgen.models.train import TrainSettings, train_model

    config = load_config(args.config)
    if not 0.0 <= args.perturb_condition <= 5.0:
        raise InputError(f"--perturb-condition must be between 0 and 5 mm, got {args.perturb_condition}")
    if args.perturb_condition and args.model not in ("denoiser", "controlnet"):
        raise InputError("--perturb-condition applies to the denoiser and the ControlNet, which take the condition")
    if args.save_pairs:
        if args.model != "synthesis":
            raise InputError("--save-pairs applies to the synthesis generator (its healthy/tumor pairs)")
        from tumorgen.synthesis.training import encode_folder

        path = encode_folder(args.data, args.autoencoder or str(Path(args.out) / "autoencoder.safetensors"), config, args.save_pairs,
                             device=args.device, progress=None if args.quiet else lambda f, m: print(f"{m} ({f:.0%})", file=sys.stderr, flush=True))
        print(json.dumps({"pairs": str(path), "bytes": path.stat().st_size}))
        return 0
    settings = TrainSettings(model=args.model, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                             checkpoint_every=args.checkpoint_every, device=args.device,
                             perturb_condition_mm=args.perturb_condition)
    bars: list[tqdm] = []

    def progress(step: int, total: int, loss: float) -> None:
        if not bars:  # created on the first step so a resumed run's speed and ETA count only this run's steps
            bars.append(tqdm(total=total, initial=step - 1, disable=args.quiet, file=sys.stderr, dynamic_ncols=True,
                             unit="step"))
        bar = bars[0]
        bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
        bar.update(step - bar.n)

    started = time.perf_counter()
    try:
        path = train_model(settings, config, args.data, args.out, resume=args.resume, autoencoder=args.autoencoder,
                           denoiser=args.denoiser, progress=progress, command="tumorgen " + shlex.join(sys.argv[1:]),
                           status=None if args.quiet else lambda message: print(message, file=sys.stderr, flush=True), init=args.init)
    finally:
        for bar in bars:
            bar.close()
    print(json.dumps({"weights": str(path), "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0
