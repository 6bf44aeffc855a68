"""Helpers shared by the tests (on pytest's pythonpath through pytest.ini)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tumorgen.volume import Grid

SUPPORT = Path(__file__).resolve().parent

# Rotation by Euler angles (20°, -15°, 30°) about x, y, z: a clearly oblique direction.
_c, _s = np.cos, np.sin
_ax, _ay, _az = np.radians([20.0, -15.0, 30.0])
_RX = np.array([[1, 0, 0], [0, _c(_ax), -_s(_ax)], [0, _s(_ax), _c(_ax)]])
_RY = np.array([[_c(_ay), 0, _s(_ay)], [0, 1, 0], [-_s(_ay), 0, _c(_ay)]])
_RZ = np.array([[_c(_az), -_s(_az), 0], [_s(_az), _c(_az), 0], [0, 0, 1]])
OBLIQUE_DIRECTION = tuple((_RZ @ _RY @ _RX).ravel())


def assert_same_geometry(a: Grid, b: Grid) -> None:
    """Geometry equal to the precision a NIfTI file stores (float32)."""
    assert a.size == b.size
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-6, atol=0)
    np.testing.assert_allclose(a.origin, b.origin, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-6)


def backend_env() -> dict[str, str]:
    """Environment for a backend subprocess that also knows the test-only tasks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH", "")]))
    env["TUMORGEN_TASK_MODULES"] = "tumorgen_test_tasks"
    return env


def run_backend(job: dict | str, folder: Path, timeout: float = 60) -> tuple[int, list[dict], str]:
    """Run ``python -m tumorgen.backend`` on a job (a dict, or raw text for malformed JSON).

    Returns the exit code, the parsed stdout events and stderr. Every stdout
    line must be a JSON event: a stray line fails the caller's test here.
    """
    job_file = folder / "job.json"
    job_file.write_text(job if isinstance(job, str) else json.dumps(job))
    proc = subprocess.run(
        [sys.executable, "-m", "tumorgen.backend", str(job_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=backend_env(),
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


#: A white-matter voxel of :func:`brain_phantom`, left of its ventricle.
PHANTOM_SEED = (14, 22, 20)


def brain_phantom(size=(48, 44, 40), spacing=(1.0, 1.0, 1.0), direction=None):
    """An ellipsoidal brain: white-matter core, a grey-matter rim, a CSF 'ventricle', background outside."""
    grid = Grid(size=size, spacing=spacing, origin=(10.0, -20.0, 5.0), direction=direction or (1, 0, 0, 0, 1, 0, 0, 0, 1))
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1) * np.asarray(spacing)
    centre = (np.asarray(size) - 1) * np.asarray(spacing) / 2
    r = np.linalg.norm((idx - centre) / (centre * 0.95), axis=-1)
    brain = r < 1.0
    gm = (brain & (r > 0.75)).astype(np.float32)
    ventricle = np.linalg.norm((idx - centre - np.array([6.0, 0, 0])) / np.array([3.0, 6.0, 5.0]), axis=-1) < 1.0
    wm = (brain & (r <= 0.75) & ~ventricle).astype(np.float32)
    csf = (brain & ventricle).astype(np.float32)
    # partial volume at the grey/white border
    border = brain & (np.abs(r - 0.75) < 0.04)
    gm[border], wm[border] = 0.5, 0.5
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.volume import Volume

    ref = Volume(csf, grid)
    return TissueMaps.from_arrays(csf, gm, wm, ref)


#: A model config small enough for unit tests: 16³ crops at 4 mm, 4³ latents.
SMALL_MODEL_CONFIG = {
    "name": "test", "spacing_mm": 4.0, "crop": [16, 16, 16],
    "autoencoder": {"channels": [8, 8, 8], "latent_channels": 4, "num_res_blocks": 1, "attention_levels": [False, False, False], "norm_num_groups": 4},
    "denoiser": {"channels": [8, 16, 16], "attention_levels": [False, False, True], "num_res_blocks": 1, "num_head_channels": 8, "norm_num_groups": 4},
    "controlnet": {"condition": ["csf", "gm", "wm", "concentration"], "conditioning_embedding_num_channels": [8]},
    "regressor": {"channels": [8, 16, 16], "attention_levels": [False, False, False], "num_res_blocks": 1, "norm_num_groups": 4},
    "postop": {"condition": ["composite", "tumor", "box"], "condition_dropout": 0.1, "prompt_dropout": 0.1},
    "synthesis": {"contrasts": ["t1n", "t1c", "t2w", "t2f"], "channels": [8, 16, 16], "attention_levels": [False, False, False],
                  "num_res_blocks": 1, "num_head_channels": 8, "norm_num_groups": 4},
    "scheduler": {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "schedule": "linear_beta"},
}


def small_models(root: Path, spacing_mm: float = 4.0, seed: int = 0, postop: bool = False, synthesis: bool = False) -> Path:
    """Untrained :data:`SMALL_MODEL_CONFIG` models (autoencoder, denoiser, ControlNet; with ``postop`` the post-operative
    ControlNet too, with ``synthesis`` the label-map synthesis generator) saved in ``root`` like a training run leaves them.

    The zero-initialised output layers of the denoiser and the ControlNet get small random values, so that the
    noise estimate depends on the latents and the condition.
    """
    import torch

    from tumorgen.models import networks as N
    from tumorgen.models.config import load_config
    from tumorgen.models.weights import save_weights

    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "small.json"
    config_path.write_text(json.dumps({**SMALL_MODEL_CONFIG, "spacing_mm": spacing_mm}))
    config = load_config(config_path)
    torch.manual_seed(seed)
    denoiser = _wake(N.build_denoiser(config))
    save_weights(N.build_autoencoder(config), root / "autoencoder.safetensors", {"config": str(config_path), "latent_scale": 2.0})
    save_weights(denoiser, root / "denoiser.safetensors", {"config": str(config_path)})
    controlnet = _wake(N.build_controlnet(config, denoiser))
    save_weights(controlnet, root / "controlnet.safetensors", {"config": str(config_path)})
    if postop:
        save_weights(_wake(N.build_controlnet(config.for_postop(), denoiser)), root / "postop.safetensors", {"config": str(config_path)})
    if synthesis:
        from tumorgen.synthesis.model import build_generator

        save_weights(_wake(build_generator(config)), root / "synthesis.safetensors", {"config": str(config_path)})
    return root


def _wake(module):
    import torch

    with torch.no_grad():
        for parameter in module.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.05)
    return module


def phantom_t1(tissues, scale: float = 1000.0, seed: int = 0, dtype=np.int16):
    """A T1-like image of :func:`brain_phantom`'s tissues (WM bright, CSF dark) with noise, as ``dtype`` on ``scale``."""
    from tumorgen.volume import Volume

    rng = np.random.default_rng(seed)
    csf, gm, wm = (np.asarray(m.array, np.float64) for m in (tissues.csf, tissues.gm, tissues.wm))
    image = 0.25 * csf + 0.6 * gm + 0.9 * wm
    image = np.where(csf + gm + wm > 0, image + 0.03 * rng.standard_normal(image.shape), 0.0) * scale
    image = np.rint(image) if np.issubdtype(np.dtype(dtype), np.integer) else image
    return Volume(image.astype(dtype), tissues.csf.grid)
