#!/usr/bin/env python3
"""Train a model folder end to end: diverse MNI152-derived subjects in, weights with cards and metrics out.

One command for a GPU lease (and, much slower, for 2 CPU cores in the
background). Every stage skips what is already done and training resumes from
its checkpoint, so the same command run again carries on where a deadline or a
crash stopped it:

1. **data**: ``--subjects`` training subjects simulated from the MNI152 template
   with the diversity the fidelity benchmark asks of the models: 4 mm
   anatomical warps plus ``--fold`` mm folds (the benchmark's held-out anatomy
   uses 7 mm and 2.5 mm, and other seeds), each subject's imaging drawn by
   ``--varied-imaging``; ``--workers`` processes in parallel; and ``--held``
   held-out subjects of seed 900 with noise-free references for the metrics;
2. **autoencoder**, **denoiser**, **controlnet**: ``tumorgen train`` on the
   config (``small`` by default) with bf16 autocast on CUDA, checkpoints every
   ``--checkpoint-every`` steps;
3. **metrics**: ``eval_models.py`` on the held-out subjects, written into the
   model cards (autoencoder PSNR against the noise-free image, target ≥ 30 dB;
   WM Dice of DDIM samples, target ≥ 0.8);
4. **bring**: with ``--bring DIR``, the three weight files and one
   ``training.tar.gz`` (cards, loss logs and curves, metrics, the log) copied to
   DIR: what a device lease brings back (each file under 16 MiB).

``--deadline S`` stops a training stage (killed after its last checkpoint)
when S seconds have passed since the start, leaving everything to resume.

    # a GPU lease (the engine's dependencies as wheels, see docs/user/models.md)
    python Testing/benchmarks/train_models.py --work /tmp/tg --device cuda --workers 16 --deadline 500 --bring $OUT
    # 2 CPU cores, in the background, resumable
    nohup .venv/bin/python Testing/benchmarks/train_models.py --work train-small --device cpu --workers 1 &
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

MODELS = ("autoencoder", "denoiser", "controlnet")


def tumorgen(*args: str) -> list[str]:
    return [sys.executable, "-m", "tumorgen.cli.main", *args]


class Driver:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(args.work)
        self.data = self.work / "data"
        self.held = self.work / "held"
        self.weights = self.work / "weights"
        self.log = self.work / "train-models.log"
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.started:7.1f} s] {message}"
        print(line, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def left(self) -> float | None:
        return None if self.args.deadline is None else self.args.deadline - (time.monotonic() - self.started)

    def run(self, command: list[str], what: str) -> bool:
        """Run ``command``; False when the deadline stopped it (its checkpoint stays for a resume)."""
        left = self.left()
        if left is not None and left <= 5:
            self.say(f"{what}: no time left before the deadline")
            return False
        self.say(f"{what}: {' '.join(command[2:])}")
        try:
            subprocess.run(command, check=True, timeout=left, stdout=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.say(f"{what}: stopped at the deadline; run again to resume")
            return False
        return True

    # -- stages -----------------------------------------------------------------------------------
    def simulate(self) -> None:
        a = self.args
        if not (self.data / "done").is_file():
            parts = self.work / "parts"
            shutil.rmtree(parts, ignore_errors=True)
            shares = [len(range(w, a.subjects, a.workers)) for w in range(a.workers)]
            processes = []
            for w, n in enumerate(shares):
                if n:
                    command = tumorgen("simulate", "--n", str(n), "--seed", str(a.seed + w), "--prefix", f"TGTR{w:02d}",
                                       "--fold", str(a.fold), "--varied-imaging", "--spacing", str(a.spacing), "--quiet",
                                       "--out", str(parts / f"w{w:02d}"))
                    processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
            self.say(f"simulating {a.subjects} training subjects in {len(processes)} processes")
            if any(p.wait() != 0 for p in processes):
                raise SystemExit("simulation failed")
            shutil.rmtree(self.data, ignore_errors=True)
            self.data.mkdir(parents=True)
            for case in sorted(parts.glob("w*/TGTR*")):
                case.rename(self.data / case.name)
            shutil.rmtree(parts)
            (self.data / "done").write_text(json.dumps({"subjects": a.subjects, "seeds": [a.seed + w for w in range(a.workers)],
                                                        "fold_mm": a.fold, "varied_imaging": True}))
        if not (self.held / "done").is_file():
            shutil.rmtree(self.held, ignore_errors=True)
            subprocess.run(tumorgen("simulate", "--n", str(a.held), "--seed", "900", "--prefix", "TGHELD", "--noise-free-reference",
                                    "--spacing", str(a.spacing), "--quiet", "--out", str(self.held)), check=True, stdout=subprocess.DEVNULL)
            (self.held / "done").write_text("{}")

    def train(self, model: str) -> bool:
        a = self.args
        if (self.weights / f"{model}.safetensors").is_file():
            return True
        steps, batch, lr = {"autoencoder": (a.steps_autoencoder, a.batch_autoencoder, 1e-3),
                            "denoiser": (a.steps_denoiser, a.batch_latent, 5e-4),
                            "controlnet": (a.steps_controlnet, a.batch_latent, 2e-4)}[model]
        command = tumorgen("train", model, "--data", str(self.data), "--config", a.config, "--out", str(self.weights),
                           "--steps", str(steps), "--batch", str(batch), "--lr", str(lr), "--seed", str(a.seed),
                           "--checkpoint-every", str(a.checkpoint_every), "--device", a.device, "--quiet")
        if (self.weights / f"{model}-checkpoint").exists():
            command.append("--resume")
        return self.run(command, model)

    def evaluate(self) -> None:
        out = self.weights / "metrics.json"
        if out.is_file():
            return
        script = Path(__file__).with_name("eval_models.py")
        self.run([sys.executable, str(script), "--data", str(self.held), "--weights", str(self.weights), "--steps", "25",
                  "--only", "autoencoder,diffusion", "--update-cards", "--out", str(out)], "metrics")

    def bring(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for model in MODELS:
            source = self.weights / f"{model}.safetensors"
            if source.is_file():
                shutil.copy2(source, folder / source.name)
        with tarfile.open(folder / "training.tar.gz", "w:gz") as tar:
            for path in sorted(self.weights.glob("*")):
                if path.suffix in (".json", ".csv", ".png"):
                    tar.add(path, arcname=path.name)
            tar.add(self.log, arcname=self.log.name)
            tar.add(self.data / "done", arcname="data.json")
        self.say(f"brought {sorted(p.name for p in folder.iterdir())} to {folder}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="working folder: data, held-out subjects, weights and checkpoints")
    parser.add_argument("--config", default="small", help="model config (default small)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--subjects", type=int, default=48, help="training subjects (default 48)")
    parser.add_argument("--held", type=int, default=2, help="held-out subjects for the metrics (default 2)")
    parser.add_argument("--spacing", type=float, default=1.0, help="voxel size of the simulated subjects, mm (default 1)")
    parser.add_argument("--fold", type=float, default=1.5, help="fold size of the training anatomy, mm (default 1.5)")
    parser.add_argument("--seed", type=int, default=300, help="first simulation seed; worker w uses seed + w (default 300)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="parallel simulations")
    parser.add_argument("--steps-autoencoder", type=int, default=4000)
    parser.add_argument("--steps-denoiser", type=int, default=4000)
    parser.add_argument("--steps-controlnet", type=int, default=3000)
    parser.add_argument("--batch-autoencoder", type=int, default=8)
    parser.add_argument("--batch-latent", type=int, default=16)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--deadline", type=float, metavar="S", help="stop training S seconds after the start (resumable)")
    parser.add_argument("--bring", metavar="DIR", help="copy the weights and a training.tar.gz of the rest here")
    args = parser.parse_args(argv)
    if args.subjects < args.workers or args.held < 1:
        parser.error("--subjects must be at least --workers, and --held at least 1")

    driver = Driver(args)
    driver.work.mkdir(parents=True, exist_ok=True)
    driver.simulate()
    finished = all(driver.train(model) for model in MODELS)  # stops at the first one the deadline cut short
    if finished:
        driver.evaluate()
    if args.bring:
        driver.bring(Path(args.bring))
    driver.say("all models trained and evaluated" if finished and (driver.weights / "metrics.json").is_file()
               else "stopped before the end: run the same command again to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
