#!/usr/bin/env python3
"""Train the inpainting prior (:mod:`tumorgen.inpainting.prior`) on the CPU, resumable, and export it.

    .venv/bin/python Testing/benchmarks/train_prior.py --out prior-run --steps 1800          # ~60 min on 2 cores
    .venv/bin/python Testing/benchmarks/train_prior.py --out prior-run --steps 1800          # again: resumes
    .venv/bin/python Testing/benchmarks/train_prior.py --out prior-run --export TumorGenLib/tumorgen/models/weights/tiny/prior.safetensors

The anatomies (warped MNI152 tissue maps, seeds 9100+) are cached in ``--cache``;
every example is drawn fresh from them (see :mod:`tumorgen.inpainting.prior_training`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict
from pathlib import Path


def main(argv=None) -> int:
    from tumorgen.inpainting.prior_training import PriorTraining, export, train

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="training folder (state.pt, curve.json): resumed when it exists")
    parser.add_argument("--cache", default="prior-anatomies", help="folder of the cached anatomies")
    parser.add_argument("--steps", type=int, default=PriorTraining.steps)
    parser.add_argument("--batch", type=int, default=PriorTraining.batch)
    parser.add_argument("--lr", type=float, default=PriorTraining.lr)
    parser.add_argument("--anatomies", type=int, default=PriorTraining.anatomies)
    parser.add_argument("--seed", type=int, default=PriorTraining.seed)
    parser.add_argument("--no-randomise", action="store_true", help="the simulator's fixed T1 contrast (the ablation)")
    parser.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long; run again to resume")
    parser.add_argument("--export", help="write the trained weights (float16) and their card here instead of training")
    parser.add_argument("--metrics", help="a JSON file of measured metrics to put on the card (with --export)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.export:
        import torch

        curve = json.loads((out / "curve.json").read_text())
        card = {"model": "inpainting prior (MONAI BasicUNet, features 8-16-32-64-128-8, residual over the harmonic fill)",
                "training_data": "simulated T1 crops (64³, 1 mm) of MNI152 tissue maps warped by random diffeomorphisms "
                                 "(seeds 9100+, not the fidelity benchmark's), individual folding, "
                                 + ("randomised per-class contrast, bias, blur, noise and gamma"
                                    if curve["settings"]["randomise"] else "the simulator's fixed T1 contrast")
                                 + "; random masks of 3-36 cm³ anywhere in the brain",
                "settings": curve["settings"], "hardware": f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
                "command": f"python Testing/benchmarks/train_prior.py --out RUN --steps {curve['settings']['steps']}",
                "metrics": json.loads(Path(args.metrics).read_text()) if args.metrics else None}
        print(export(out, Path(args.export), card))
        return 0
    settings = PriorTraining(steps=args.steps, batch=args.batch, lr=args.lr, anatomies=args.anatomies, seed=args.seed,
                             randomise=not args.no_randomise)
    print(json.dumps(asdict(settings)), flush=True)
    train(settings, out, Path(args.cache), log=lambda m: print(m, flush=True),
          max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
