"""The end-to-end training script (Testing/benchmarks/train_models.py) at toy scale: stages, deadline and resume, what it brings."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from tumorgen_testing import SMALL_MODEL_CONFIG

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_models.py"


def test_the_driver_trains_evaluates_resumes_and_brings_the_weights(tmp_path):
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({**SMALL_MODEL_CONFIG, "name": "toy"}))
    work, out = tmp_path / "work", tmp_path / "out"
    base = [sys.executable, str(SCRIPT), "--work", str(work), "--config", str(config), "--device", "cpu", "--spacing", "4",
            "--subjects", "2", "--workers", "2", "--held", "1", "--steps-autoencoder", "2", "--steps-denoiser", "2",
            "--steps-controlnet", "2", "--batch-autoencoder", "1", "--batch-latent", "1", "--checkpoint-every", "1"]
    # a deadline already spent: the data are made, no training starts, and the run says how to go on
    first = subprocess.run(base + ["--deadline", "0"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "no time left" in first.stdout and "run the same command again" in first.stdout
    cases = sorted(p.name for p in (work / "data").iterdir() if p.is_dir())
    assert cases == ["TGTR00-00000-000", "TGTR01-00000-000"]  # one subject per worker, seeds 300 and 301
    assert json.loads((work / "data" / "done").read_text())["fold_mm"] == 1.5
    assert not (work / "weights" / "autoencoder.safetensors").exists()
    # the same command without a deadline carries on to the end
    second = subprocess.run(base + ["--bring", str(out)], capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert "all models trained and evaluated" in second.stdout and "simulating" not in second.stdout  # the data were kept
    assert sorted(p.name for p in out.iterdir()) == ["autoencoder.safetensors", "controlnet.safetensors", "denoiser.safetensors",
                                                     "training.tar.gz"]
    with tarfile.open(out / "training.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"autoencoder.json", "denoiser.json", "controlnet.json", "metrics.json", "train-models.log", "data.json"} <= names
    card = json.loads((work / "weights" / "autoencoder.json").read_text())
    assert "metrics" in card  # eval_models.py --update-cards wrote the held-out numbers into the card
