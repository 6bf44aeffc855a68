#!/usr/bin/env python3
"""Speed: what-if inpainting with 1 and 8 samples, under load, reduced precision, FK growth, whole-brain DDIM-50.

Everything is measured in one run and the ratios are taken between rows of that run:

* ``whatif-command`` (CPU): ``tumorgen inpaint --t1n VOIDED --mask MASK`` as a whole process with the default
  settings (tissue maps by registering the template, cached by a first run that is not timed; the harmonic start;
  the self-check) on a 40 cm³ cube in the left temporal lobe of a held-out folded subject with the ``gamma``
  profile (case ``A1-gamma-cube-temporal-left-40cm3`` of the fidelity benchmark), with ``--samples 1`` and ``8``;
  the best of ``--repeats``.
* ``whatif-load`` (CPU): the 1-sample command again while one other CPU-bound process (a Python busy loop) runs,
  with the engine's thread settings (:mod:`tumorgen.threads`) and with the settings before them (OpenMP's default
  spinning, OpenBLAS's own threads, PyTorch on both cores: ``GOMP_SPINCOUNT=300000 OPENBLAS_NUM_THREADS=2
  TUMORGEN_THREADS=2``); each against the idle time.
* ``whatif`` (the device): :func:`tumorgen.inpainting.core.inpaint` in this process on the same case (model
  loaded, tissue maps registered beforehand), 1 and 8 samples, each precision the device runs (float32 and
  bfloat16 on CPUs with AVX-512 BF16 and on CUDA; float16 on CUDA), with the PSNR/SSIM of the result against the
  subject's true scan inside the mask, so that the precision's cost in fidelity is on the same row.
* ``fk``: :func:`speed_fk.fk_rows` on the 240×240×155 grid (numpy, torch eager and fused, batches, the
  bandwidth bound on CUDA, the plain explicit-Euler reference unless ``--no-reference``), and on the CPU
  ``tumorgen grow`` for 65 days on that grid as a whole process (the best of ``--repeats``).
* ``ddim``: :meth:`LatentDiffusion.sample` with DDIM 50 over the whole 1 mm sample brain under its tissue maps.

A GPU machine has no SimpleITK, which the simulator and the registration need: ``--export-case FILE.npz`` writes
the what-if case (cropped around the mask, registered maps included) on a machine that has it, and ``--case
FILE.npz`` reads it there; the command rows and ``tumorgen grow`` then are skipped.

    .venv/bin/python Testing/benchmarks/bench_speed.py --out speed               # CPU, everything (~10 min)
    .venv/bin/python Testing/benchmarks/bench_speed.py --sections whatif-command --samples 1 --repeats 3 \
        --baseline /tmp/prev/TumorGenLib --out speed  # this release against a checkout of the previous one, interleaved
    .venv/bin/python Testing/benchmarks/bench_speed.py --export-case whatif.npz  # for a GPU machine
    python Testing/benchmarks/bench_speed.py --device cuda --case whatif.npz --out $OUT   # there, a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CASE_INDEX = 4  # A1-gamma-cube-temporal-left-40cm3 in bench_fidelity.cases(12)
SECTIONS = ("whatif-command", "whatif-load", "whatif", "fk", "ddim")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3).splitlines()[-1]}"


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# -- the what-if case ------------------------------------------------------------------------------


def build_case(cache_dir: Path) -> dict:
    """The fidelity benchmark's 40 cm³ temporal cube: voided scan, mask, truth and the registered tissue maps."""
    import bench_fidelity as bf

    from tumorgen.anatomy.registration import tissues_for_subject

    case = bf.cases(12)[CASE_INDEX]
    truth, _, brain, _ = bf.subject(case)
    rng = np.random.default_rng([bf.ANATOMY_SEED, case.anatomy, bf.SHAPES.index(case.shape)])
    mask = bf.make_mask(brain, truth.grid, case, rng)
    voided = truth.with_array(np.where(mask, 0, truth.array).astype(np.float32))
    maps = tissues_for_subject(voided, voided.with_array(mask), cache_dir=cache_dir)
    return {"name": case.name, "truth": truth, "voided": voided, "mask": voided.with_array(mask),
            "maps": {"csf": maps.csf, "gm": maps.gm, "wm": maps.wm}}


def export_case(case: dict, path: Path, margin: int = 40) -> None:
    """The case cropped to the mask's box plus ``margin`` voxels (the self-check's mirror probe needs the other
    hemisphere, so the crop keeps the whole left-right extent), as float32 arrays with the grid."""
    where = np.argwhere(case["mask"].array)
    lo, hi = where.min(0), where.max(0) + 1
    shape = case["mask"].shape
    box = [slice(max(0, lo[a] - margin), min(shape[a], hi[a] + margin)) for a in range(3)]
    box[0] = slice(0, shape[0])
    box = tuple(box)
    from tumorgen.inpainting.core import crop_volume

    arrays = {k: crop_volume(case[k], box).array.astype(np.float32) for k in ("truth", "voided")}
    arrays["mask"] = crop_volume(case["mask"], box).array.astype(np.uint8)
    arrays.update({k: crop_volume(v, box).array.astype(np.float16) for k, v in case["maps"].items()})
    grid = crop_volume(case["truth"], box).grid
    np.savez_compressed(path, name=case["name"], grid=json.dumps(grid.__dict__), **arrays)


def load_case(path: Path) -> dict:
    from tumorgen.volume import Grid, Volume

    data = np.load(path)
    g = json.loads(str(data["grid"]))
    grid = Grid(tuple(g["size"]), tuple(g["spacing"]), tuple(g["origin"]), tuple(g["direction"]))
    volume = {k: Volume(data[k].astype(np.float32) if k != "mask" else data[k].astype(bool), grid)
              for k in ("truth", "voided", "mask", "csf", "gm", "wm")}
    return {"name": str(data["name"]), "truth": volume["truth"], "voided": volume["voided"], "mask": volume["mask"],
            "maps": {k: volume[k] for k in ("csf", "gm", "wm")}}


# -- rows --------------------------------------------------------------------------------------------


def command_seconds(args: list[str], env: dict, repeats: int) -> tuple[float, dict]:
    """The best wall time of a ``tumorgen`` command run ``repeats`` times, and its last JSON summary."""
    best, summary = float("inf"), {}
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"tumorgen {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
        best = min(best, seconds)
        try:
            summary = json.loads(done.stdout[done.stdout.index("{"):done.stdout.rindex("}") + 1])
        except ValueError:
            summary = {}
    return best, summary


def whatif_command_rows(folder: Path, cache_dir: Path, repeats: int, baseline: Path | None = None,
                        samples_list=(1, 8)) -> list[dict]:
    """The what-if command's rows; with ``baseline`` (the ``TumorGenLib`` folder of another release's checkout) the
    same command run by that code (``"code": "baseline"``), interleaved with this code's runs on the same machine."""
    env = {**os.environ, "TUMORGEN_CACHE_DIR": str(cache_dir)}
    codes = {"this": env}
    if baseline is not None:
        codes["baseline"] = {**env, "PYTHONPATH": os.pathsep.join([str(baseline), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    base = ["inpaint", "--t1n", str(folder / "voided.nii.gz"), "--mask", str(folder / "mask.nii.gz"), "--quiet"]
    for code, code_env in codes.items():  # fills the registration cache; the first run of each code is not timed
        command_seconds(base + ["--out", str(folder / f"warm-{code}" / "out.nii.gz")], code_env, 1)
    rows = []
    for samples in samples_list:
        for code, code_env in codes.items():
            try:
                seconds, summary = _run_fresh(base, samples, folder / code, code_env, repeats)
                rows.append({"section": "whatif-command", "code": code, "samples": samples, "seconds": round(seconds, 2),
                             "stages": summary.get("seconds", {})})
            except Exception as exc:  # noqa: BLE001 - a benchmark row records its failure
                rows.append({"section": "whatif-command", "code": code, "samples": samples, "error": _error(exc)})
    ok = {(r["code"], r["samples"]): r["seconds"] for r in rows if "seconds" in r}
    if ("this", 1) in ok and ("this", 8) in ok:
        rows.append({"section": "whatif-command", "ratio_8_to_1": round(ok["this", 8] / ok["this", 1], 2)})
    if ("this", 1) in ok and ("baseline", 1) in ok:
        rows.append({"section": "whatif-command", "ratio_this_to_baseline_1": round(ok["this", 1] / ok["baseline", 1], 3)})
    return rows


def _run_fresh(base: list[str], samples: int, folder: Path, env: dict, repeats: int) -> tuple[float, dict]:
    """:func:`command_seconds` with a new output folder each time (the command refuses to overwrite)."""
    best, summary = float("inf"), {}
    for n in range(repeats):
        out = folder / f"out-{samples}-{n}"
        seconds, summary = command_seconds(base + ["--samples", str(samples), "--out", str(out / "out.nii.gz")], env, 1)
        best = min(best, seconds)
    return best, summary


def whatif_load_rows(folder: Path, cache_dir: Path, repeats: int, idle_seconds: float | None) -> list[dict]:
    env = {**os.environ, "TUMORGEN_CACHE_DIR": str(cache_dir)}
    base = ["inpaint", "--t1n", str(folder / "voided.nii.gz"), "--mask", str(folder / "mask.nii.gz"), "--quiet"]
    # GNU OpenMP's default spinning (300,000 spins), OpenBLAS's own threads, and PyTorch on both cores whatever the load
    spinning = {**env, "GOMP_SPINCOUNT": "300000", "OPENBLAS_NUM_THREADS": "2", "TUMORGEN_THREADS": "2"}
    rows = []
    for name, environment in (("engine settings", env), ("spinning threads (the settings before)", spinning)):
        idle = None
        if name != "engine settings" or idle_seconds is None:
            idle, _ = _run_fresh(base, 1, folder / f"idle-{len(rows)}", environment, repeats)
        else:
            idle = idle_seconds
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            loaded, summary = _run_fresh(base, 1, folder / f"load-{len(rows)}", environment, repeats)
        except Exception as exc:  # noqa: BLE001
            rows.append({"section": "whatif-load", "threads": name, "error": _error(exc)})
            continue
        finally:
            busy.kill()
            busy.wait()
        rows.append({"section": "whatif-load", "threads": name, "idle_seconds": round(idle, 2), "loaded_seconds": round(loaded, 2),
                     "ratio": round(loaded / idle, 2), "stages": summary.get("seconds", {})})
    return rows


def precisions(device: str) -> list[str]:
    if device == "cuda":
        return ["float32", "bfloat16", "float16"]
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return ["float32", "bfloat16"] if ("avx512_bf16" in flags or "amx_bf16" in flags) else ["float32"]


def whatif_rows(case: dict, device: str, repeats: int) -> list[dict]:
    from tumorgen.inpainting.core import InpaintSettings, inpaint
    from tumorgen.inpainting.metrics import inpainting_metrics
    from tumorgen.models.sampling import LatentDiffusion

    rows = []
    variants = [(p, False) for p in precisions(device)] + ([("bfloat16", True)] if device == "cuda" else [])
    for precision, compiled in variants:
        try:
            model = LatentDiffusion(device=device, precision=precision)
            if compiled:  # tried on CUDA only: the fixed-shape denoiser compiled, with CUDA graphs
                import torch

                model.denoiser = torch.compile(model.denoiser, mode="reduce-overhead", dynamic=False)
                precision = f"{precision} + torch.compile(reduce-overhead)"
        except Exception as exc:  # noqa: BLE001
            rows.append({"section": "whatif", "device": device, "precision": precision, "error": _error(exc)})
            continue
        for samples in (1, 8):
            try:
                settings = InpaintSettings(samples=samples)
                run = lambda: inpaint(model, case["voided"], case["mask"], case["maps"], settings, registered_maps=True)  # noqa: E731
                run()  # warm-up: allocations, oneDNN/cuDNN choices
                best, result = float("inf"), None
                for _ in range(repeats):
                    _sync(device)
                    started = time.perf_counter()
                    result = run()
                    _sync(device)
                    best = min(best, time.perf_counter() - started)
                metrics = inpainting_metrics(result.mean.array, case["truth"].array, case["mask"].array, case["voided"].array)
                rows.append({"section": "whatif", "device": device, "precision": precision, "samples": samples, "seconds": round(best, 3),
                             "stages": {k: round(v, 3) for k, v in result.timings.items()},
                             "psnr": round(metrics["psnr"], 3), "ssim": round(metrics["ssim"], 4),
                             "self_check_psnr": result.check.psnr if result.check else None})
            except Exception as exc:  # noqa: BLE001
                rows.append({"section": "whatif", "device": device, "precision": precision, "samples": samples, "error": _error(exc)})
        ok = {r["samples"]: r["seconds"] for r in rows if r.get("precision") == precision and "seconds" in r}
        if 1 in ok and 8 in ok:
            rows.append({"section": "whatif", "device": device, "precision": precision, "ratio_8_to_1": round(ok[8] / ok[1], 2)})
    return rows


def grow_command_rows(folder: Path, repeats: int) -> list[dict]:
    from speed_fk import box_tissues

    from tumorgen.volume_io import write_volume

    tissues = box_tissues()
    for name in ("csf", "gm", "wm"):
        write_volume(getattr(tissues, name), folder / f"box-{name}.nii.gz")
    args = ["grow", *sum([[f"--{n}", str(folder / f"box-{n}.nii.gz")] for n in ("csf", "gm", "wm")], []),
            "--seed-ras=-38,-4,28", "--days", "65", "--quiet"]
    best, summary = float("inf"), {}
    for n in range(repeats):
        seconds, summary = command_seconds(args + ["--out", str(folder / f"grown-{n}")], dict(os.environ), 1)
        best = min(best, seconds)
    return [{"section": "fk", "solver": "tumorgen grow (whole process)", "grid": list(tissues.grid.size), "days": 65,
             "steps": summary.get("steps"), "seconds": round(best, 2), "solve_and_io_seconds": summary.get("seconds")}]


def fk_section(device: str, reference: bool, folder: Path | None, repeats: int, command: bool) -> list[dict]:
    from speed_fk import box_tissues, fk_rows

    rows = [dict(r, section="fk", part=r.get("section")) for r in fk_rows(box_tissues(), device, reference=reference)]
    if command and folder is not None:
        try:
            rows += grow_command_rows(folder, repeats)
        except Exception as exc:  # noqa: BLE001
            rows.append({"section": "fk", "solver": "tumorgen grow (whole process)", "error": _error(exc)})
    numpy_row = next((r for r in rows if r.get("part") == "grow" and r.get("solver") == "numpy" and "seconds" in r), None)
    ref = next((r for r in rows if r.get("part") == "reference" and "seconds" in r), None)
    command_row = next((r for r in rows if r.get("solver") == "tumorgen grow (whole process)" and "seconds" in r), None)
    if ref and command_row:
        rows.append({"section": "fk", "reference_over_grow_command": round(ref["seconds"] / command_row["seconds"], 1),
                     "reference_over_numpy_solve": round(ref["seconds"] / numpy_row["seconds"], 1) if numpy_row else None})
    return rows


def ddim_rows(device: str, steps: int = 50) -> list[dict]:
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.models.sampling import LatentDiffusion

    rows = []
    try:
        template = load_mni152()
        maps = template.tissues
        condition = np.stack([maps.csf.array, maps.gm.array, maps.wm.array, np.zeros(maps.grid.size, np.float32)]).astype(np.float32)
        model = LatentDiffusion(device=device)
        _sync(device)
        started = time.perf_counter()
        image = model.sample(maps.grid.size, condition, kind="ddim", steps=steps, seed=0)
        _sync(device)
        rows.append({"section": "ddim", "device": device, "steps": steps, "shape": list(maps.grid.size),
                     "seconds": round(time.perf_counter() - started, 2), "finite": bool(np.isfinite(image).all())})
    except Exception as exc:  # noqa: BLE001
        rows.append({"section": "ddim", "device": device, "error": _error(exc)})
    return rows


def environment(device: str) -> dict:
    import torch

    from tumorgen.threads import available_cores

    info = {"python": platform.python_version(), "torch": torch.__version__, "cores": available_cores(),
            "torch_threads": torch.get_num_threads(), "machine": platform.machine(), "processor": platform.processor()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the in-process rows (default cpu)")
    parser.add_argument("--out", help="folder for speed-<device>.json")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per row, the best kept (default 2)")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain explicit-Euler FK reference (minutes on a CPU)")
    parser.add_argument("--case", help="the what-if case from --export-case (for a machine without SimpleITK)")
    parser.add_argument("--export-case", metavar="FILE", help="write the what-if case as .npz and stop")
    parser.add_argument("--baseline", metavar="DIR", help="the TumorGenLib folder of another release's checkout: its what-if "
                        "command is timed too, interleaved with this code's (e.g. git worktree add /tmp/prev 0e26369)")
    parser.add_argument("--samples", default="1,8", help="sample counts of the what-if command rows (default 1,8)")
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    from tumorgen.threads import configure_threads, prepare_environment

    prepare_environment()
    configure_threads()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tumorgen-speed-") as tmp:
        tmp = Path(tmp)
        cache_dir = tmp / "cache"
        case = None
        if args.case:
            case = load_case(Path(args.case))
        elif args.export_case or {"whatif", "whatif-command", "whatif-load"} & set(sections):
            case = build_case(cache_dir)
        if args.export_case:
            export_case(case, Path(args.export_case))
            print(f"wrote {args.export_case}")
            return 0
        commands = not args.case and args.device == "cpu"
        if commands and {"whatif-command", "whatif-load"} & set(sections):
            from tumorgen.volume_io import write_volume

            write_volume(case["voided"], tmp / "voided.nii.gz")
            write_volume(case["mask"].with_array(case["mask"].array.astype(np.uint8)), tmp / "mask.nii.gz")
        idle = None
        if commands and "whatif-command" in sections:
            rows += whatif_command_rows(tmp, cache_dir, args.repeats, Path(args.baseline).resolve() if args.baseline else None,
                                        tuple(int(n) for n in args.samples.split(",")))
            idle = next((r["seconds"] for r in rows if r.get("samples") == 1 and r.get("code") == "this" and "seconds" in r), None)
        if commands and "whatif-load" in sections:
            rows += whatif_load_rows(tmp, cache_dir, args.repeats, idle)
        if "whatif" in sections:
            rows += whatif_rows(case, args.device, args.repeats)
        if "fk" in sections:
            rows += fk_section(args.device, not args.no_reference, tmp, args.repeats, commands)
        if "ddim" in sections:
            rows += ddim_rows(args.device)
    result = {"device": args.device, "environment": environment(args.device), "case": case["name"] if case else None, "rows": rows}
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"speed-{args.device}.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
