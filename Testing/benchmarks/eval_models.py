#!/usr/bin/env python3
"""Held-out metrics of a trained model folder; what the model cards and the documentation's results pages report.

Reads held-out simulated subjects (never seen in training: another seed and
prefix), resampled to the model's spacing, and measures (see
tumorgen.models.evaluate):

* autoencoder: PSNR inside the brain per contrast, against the image and,
  where the held-out set has noise-free references (simulate
  --noise-free-reference), against the noise-free image (target ≥ 30 dB),
  with the noise floor (the noise-free image against the noisy one);
* ControlNet + denoiser: WM/GM/CSF Dice of DDIM samples thresholded into three
  classes against the conditioning tissue maps (target WM ≥ 0.8), with the
  same thresholding of the real t1n and its reconstruction as the ceiling;
  held-out noise-prediction MSE with and without the ControlNet;
* regressor: tumor-volume MAE from noisy latents.

With --update-cards the numbers go into each model's card (the "metrics" key;
the weights and their SHA-256 are untouched).

    .venv/bin/tumorgen simulate --n 3 --seed 900 --prefix TGHELD --noise-free-reference --out /tmp/held
    .venv/bin/python Testing/benchmarks/eval_models.py --data /tmp/held            # the bundled tiny models
    .venv/bin/python Testing/benchmarks/eval_models.py --data /tmp/held --weights OUT --update-cards
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of held-out case folders (tumorgen simulate output)")
    parser.add_argument("--weights", help="model folder (default: the bundled tiny models)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, metavar="N", help="only the first N held-out cases (a quicker, rougher figure)")
    parser.add_argument("--out", help="write the full results as JSON here")
    parser.add_argument("--update-cards", action="store_true", help="record the metrics in the model cards")
    parser.add_argument("--only", default="autoencoder,diffusion,regressor", metavar="PARTS",
                        help="what to evaluate, comma-separated: autoencoder, diffusion (denoiser + ControlNet), regressor (default: all)")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - {"autoencoder", "diffusion", "regressor"}:
        parser.error(f"--only takes autoencoder, diffusion and regressor, got {args.only!r}")
    if args.cases is not None and args.cases < 1:
        parser.error(f"--cases must be at least 1, got {args.cases}")

    from tumorgen.atomic import write_text
    from tumorgen.models.data import load_cases
    from tumorgen.models.evaluate import evaluate_autoencoder, evaluate_diffusion, evaluate_regressor
    from tumorgen.models.sampling import LatentDiffusion
    from tumorgen.models.weights import card_path, read_card

    model = LatentDiffusion(args.weights)
    cases = load_cases(args.data, model.config.spacing_mm)[: args.cases]
    data = {"folder": str(Path(args.data).resolve()), "cases": [c.name for c in cases]}
    results: dict[str, dict] = {}
    started = time.perf_counter()
    if "autoencoder" in parts:
        results["autoencoder"] = evaluate_autoencoder(model, cases, progress=lambda f, msg: print(f"  {msg}", file=sys.stderr, flush=True))
    ae = results.get("autoencoder", {})
    for key, what in (("psnr_brain_db", "against the image"), ("psnr_noisefree_db", "against the noise-free image"),
                      ("noise_floor_db", "noise floor (noise-free vs image)")):
        if f"{key}_mean" in ae:
            print(f"autoencoder PSNR in the brain, {what}: {ae[f'{key}_mean']:.2f} dB mean, {ae[f'{key}_min']:.2f} dB min; "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ae[f"{key}_by_contrast"].items()), flush=True)
    if model.controlnet is not None and "diffusion" in parts:
        diff = evaluate_diffusion(model, cases, steps=args.steps, seed=args.seed,
                                  progress=lambda f, msg: print(f"  {msg}", file=sys.stderr, flush=True))
        results["denoiser"] = results["controlnet"] = diff
        print("ControlNet + DDIM {ddim_steps}: Dice CSF/GM/WM sampled {s[0]:.3f}/{s[1]:.3f}/{s[2]:.3f}; real t1n {r[0]:.3f}/{r[1]:.3f}/{r[2]:.3f}; "
              "reconstructed {c[0]:.3f}/{c[1]:.3f}/{c[2]:.3f}; noise MSE denoiser {nd:.4f}, with ControlNet {nc:.4f}".format(
                  ddim_steps=diff["ddim_steps"], nd=diff["noise_mse_denoiser"], nc=diff["noise_mse_controlnet"],
                  s=[diff[f"dice_sampled_{k}"] for k in ("csf", "gm", "wm")],
                  r=[diff[f"dice_real_t1n_{k}"] for k in ("csf", "gm", "wm")],
                  c=[diff[f"dice_reconstructed_{k}"] for k in ("csf", "gm", "wm")]), flush=True)
    if model.regressor is not None and "regressor" in parts:
        results["regressor"] = evaluate_regressor(model, cases, seed=args.seed)
        print("regressor: volume MAE (cm³) by t " + ", ".join(f"{t}: {v:.2f}" for t, v in results["regressor"]["volume_mae_cm3_by_t"].items())
              + f" (mean crop volume {results['regressor']['volume_mean_cm3']:.2f} cm³)", flush=True)
    seconds = round(time.perf_counter() - started, 1)
    print(f"{seconds} s", flush=True)
    if args.out:
        write_text(args.out, json.dumps({"data": data, "command": "python Testing/benchmarks/eval_models.py " + " ".join(sys.argv[1:]),
                                         "seconds": seconds, **results}, indent=2))
    if args.update_cards:
        for name, metrics in results.items():
            weights = model.folder / f"{name}.safetensors"
            card = read_card(weights)
            summary = {k: v for k, v in metrics.items() if k != "cases"}
            card["metrics"] = {"held_out_data": data, "command": "python Testing/benchmarks/eval_models.py " + " ".join(sys.argv[1:]),
                               **summary}
            write_text(card_path(weights), json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
