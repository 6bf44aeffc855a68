"""Synthetic datasets: N cases in BraTS layout and their datalist, made in this process or on Ray.

A *maker* synthesizes one case; this module runs it for every case of a
dataset and owns everything around it:

* **one seed per case**, :func:`case_seed` from ``(seed, index)`` alone, so a
  case's bytes depend neither on the number of workers nor on where it ran;
* **every case exactly once, whole or absent**: the maker writes into a fresh
  staging folder ``out/.partial-<case>-<random>/<case>/`` that is renamed to
  ``out/<case>`` when complete. A second attempt of the same case (Ray reruns
  the task of a killed worker) finding ``out/<case>`` already there drops its
  copy. Staging folders left by a killed process are removed when the run
  ends and when the next one starts;
* **resumable**: complete case folders (all five files) are skipped;
* ``out/dataset.json``, a MONAI / Medical Segmentation Decathlon datalist (what
  nnU-Net v1 reads), written atomically after the cases;
* progress, cancellation, and a :class:`DatasetSummary`.

Modes: ``workers=0`` runs the cases one after the other in this process, no
Ray; ``workers=K`` starts a private local Ray with K CPUs (one case per CPU) and
shuts it down at the end; ``ray_address`` joins an existing cluster (its nodes
need TumorGen installed and ``out`` on a file system they share). A Ray
initialised by the caller beforehand is used as it is and left running.

A case folder holds ``<case>-t1n.nii.gz``, ``-t1c``, ``-t2w``, ``-t2f`` and
``-seg`` (BraTS 2023 names and labels) and ``<case>.json``: its index, seed and
what the maker reported.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from tumorgen.atomic import check_writable_dir, fresh_dir, publish_dir_once, write_text
from tumorgen.errors import InputError

#: ``maker(index, case_seed, staging_folder, settings) -> dict``: writes one case's files into ``staging_folder``
#: (a fresh empty folder named like the case) and returns a small JSON-able dict about it; deterministic from
#: ``(index, case_seed, settings)``.
Maker = Callable[[int, int, Path, dict], dict]

#: The four contrasts, in the datalist's channel order.
CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
#: The BraTS 2023 labels.
LABELS = {"0": "background", "1": "necrotic core", "2": "edema", "3": "enhancing tumor"}
#: Where a case is written before it is renamed into place: ``out/.partial-<case>-<random>/<case>/``.
PARTIAL_PREFIX = ".partial-"
DATALIST = "dataset.json"
#: Held (``flock``) by the run writing a dataset, so that two runs do not share one folder.
LOCK = ".tumorgen-dataset.lock"
MODES = ("process", "ray-local", "ray-cluster")
#: How often Ray reruns a case whose worker died (a killed process, a lost node). A maker's own exception is not retried.
MAX_RETRIES = 3
#: Object store of a local Ray: the results are small dicts, the volumes go to disk.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2
MAX_CASES = 1_000_000


def case_name(prefix: str, index: int) -> str:
    """The name of case ``index``: ``TGSYN-00012``."""
    return f"{prefix}-{index:05d}"


def case_seed(seed: int, index: int) -> int:
    """Case ``index``'s seed: the ``index``-th child of ``SeedSequence(seed)`` (what ``spawn`` gives), as a 63-bit integer.

    It depends on ``(seed, index)`` only, not on how many cases there are nor where they run.
    """
    child = np.random.SeedSequence(entropy=seed, spawn_key=(index,))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def case_files(case: str) -> list[str]:
    """The five files every case has: the four contrasts, then the labels."""
    return [f"{case}-{suffix}.nii.gz" for suffix in (*CONTRASTS, "seg")]


def is_complete(folder: Path, case: str | None = None) -> bool:
    """Whether ``folder`` is a case folder with all five files."""
    case = case or folder.name
    return folder.is_dir() and all((folder / name).is_file() for name in case_files(case))


@dataclass
class DatasetSummary:
    """What a run did. ``workers`` is the number of cases run at once (1 in this process)."""

    made: list[str]
    skipped: list[str]
    failed: list[str]
    seconds: float
    workers: int
    mode: str
    cases_per_hour: float
    out: Path
    #: one line per failed case: the maker's exception, or how its worker died
    errors: dict[str, str] = field(default_factory=dict)
    #: ``cancel()`` stopped the run before every case was made
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: the counts, the failed cases with their errors, the timing."""
        data = asdict(self)
        data["out"] = str(self.out)
        data["made"], data["skipped"] = len(self.made), len(self.skipped)
        data["failed"] = dict(sorted(self.errors.items()))
        del data["errors"]
        data["seconds"], data["cases_per_hour"] = round(self.seconds, 2), round(self.cases_per_hour, 1)
        return data


# -- the maker -------------------------------------------------------------------------------
def resolve_maker(maker: Maker | str) -> Maker:
    """A maker given as ``"package.module:function"`` (what Ray workers import), or the callable itself."""
    if callable(maker):
        return maker
    module_name, _, name = str(maker).partition(":")
    if not module_name or not name:
        raise InputError(f"a maker is named 'module:function', got {maker!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"cannot import the maker's module {module_name}: {exc}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise InputError(f"{module_name} has no function {name}")
    return function


def _set_torch_threads(threads: int) -> int | None:
    """``torch.set_num_threads(threads)`` when PyTorch is installed; the previous number, or None. The threads stay
    as set: :func:`tumorgen.threads.rebalance` is stopped in this process."""
    from tumorgen.threads import hold_threads

    hold_threads()
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    return previous


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_case(maker: Maker | str, out: str, case: str, index: int, seed: int, settings: dict, threads: int) -> dict:
    """Make one case into ``out/<case>`` (the body of every task, in this process or on a Ray worker).

    Returns ``{"case", "status": "made", "info"}``, or ``{"case", "status": "failed", "error"}``
    when the maker raised or did not write the five files; then nothing of the case is left.
    """
    _set_torch_threads(threads)
    make = resolve_maker(maker)
    out_dir = Path(out)
    root = fresh_dir(out_dir, f"{PARTIAL_PREFIX}{case}-")
    try:
        staging = root / case
        staging.mkdir()  # inside mkdtemp's 0700 folder, so that it gets the umask's permissions
        try:
            info = make(index, seed, staging, dict(settings))
            info = json.loads(json.dumps(dict(info or {})))  # JSON-able, and a copy
            missing = [name for name in case_files(case) if not (staging / name).is_file()]
            if missing:
                raise RuntimeError(f"the maker did not write {', '.join(missing)}")
        except Exception as exc:  # noqa: BLE001 - one bad case does not stop the others
            return {"case": case, "status": "failed", "error": _one_line(exc)}
        record = {"case": case, "index": index, "seed": seed, **{k: v for k, v in info.items() if k not in ("case", "index", "seed")}}
        (staging / f"{case}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        target = out_dir / case
        if not publish_dir_once(staging, target) and not is_complete(target, case):  # another attempt's folder is there
            raise InputError(f"{target} is in the way and is not a complete case")
        return {"case": case, "status": "made", "info": info}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the run ---------------------------------------------------------------------------------
def build_dataset(
    out: str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    prefix: str = "TGSYN",
    maker: Maker | str,
    settings: dict | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    threads_per_case: int = 1,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    runtime_env: dict | None = None,
) -> DatasetSummary:
    """Make cases ``0 … n-1`` of a dataset in ``out`` and write its datalist ``out/dataset.json``.

    Args:
        out: the dataset folder (created if missing); complete cases already in it are kept.
        n: the number of cases.
        seed: the dataset's seed; case i gets :func:`case_seed` ``(seed, i)``.
        prefix: case names are ``<prefix>-00000``, ...
        maker: the per-case function, or ``"module:function"`` naming it (importable on every worker).
        settings: passed to the maker as they are (JSON-able).
        workers: 0: in this process, no Ray; K ≥ 1: a local Ray with K CPUs. Default: a local Ray with one
            worker per CPU, unless ``ray_address`` is given.
        ray_address: join this Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``).
        threads_per_case: PyTorch threads of each case (``torch.set_num_threads``), in every mode.
        progress: ``progress(fraction, message)``, called as cases finish.
        cancel: polled while the run waits; when it returns True no further case starts, the running ones are
            cancelled, and only complete cases remain.
        runtime_env: Ray's runtime environment for the tasks. A local Ray gets the driver's own
            import path (``sys.path`` entries outside the Python installation) on ``PYTHONPATH`` in any case.

    Raises:
        InputError: bad arguments, ``out`` not writable, another run writing to ``out``, or cases in ``out``
            made with another seed.
    """
    started = time.perf_counter()
    if not 1 <= n <= MAX_CASES:
        raise InputError(f"the number of cases must be between 1 and {MAX_CASES}, got {n}")
    if seed < 0:
        raise InputError(f"the seed must be >= 0, got {seed}")
    if not prefix or not "".join(prefix.split("-")).isalnum():
        raise InputError(f"the case prefix must be letters, digits and dashes, got {prefix!r}")
    if workers is not None and ray_address is not None:
        raise InputError("give the number of workers or a Ray address, not both")
    if workers is not None and workers < 0:
        raise InputError(f"the number of workers must be >= 0, got {workers}")
    if threads_per_case < 1:
        raise InputError(f"threads per case must be >= 1, got {threads_per_case}")
    resolve_maker(maker)  # a bad maker fails here, not on every worker
    settings = dict(settings or {})
    if workers is None and ray_address is None:
        workers = os.cpu_count() or 1
    out = check_writable_dir(Path(out).expanduser().resolve())
    report = progress or (lambda fraction, message: None)

    with _locked(out):
        _remove_partials(out)
        cases = {case_name(prefix, i): (i, case_seed(seed, i)) for i in range(n)}
        records = _existing_cases(out, cases)
        skipped = sorted(records)
        todo = [(case, *cases[case]) for case in sorted(cases) if case not in records]
        made: list[str] = []
        errors: dict[str, str] = {}

        def finished(result: dict) -> None:
            case = result["case"]
            if result["status"] == "made":
                made.append(case)
                index, case_seed_ = cases[case]
                records[case] = {"case": case, "index": index, "seed": case_seed_, **result["info"]}
            else:
                errors[case] = result["error"]
            done = len(skipped) + len(made) + len(errors)
            report(done / n, f"{case} {result['status']} ({done}/{n})")

        report(len(skipped) / n, f"{len(skipped)} of {n} cases already made" if skipped else f"{n} cases to make")
        job = dict(out=out, maker=maker, settings=settings, threads=threads_per_case, todo=todo, finished=finished, cancel=cancel)
        try:
            if workers == 0:
                mode, slots, cancelled = "process", 1, _run_in_process(**job)
            else:
                mode = "ray-cluster" if ray_address is not None else "ray-local"
                slots, cancelled = _run_on_ray(**job, workers=workers, address=ray_address, runtime_env=runtime_env)
        finally:
            _remove_partials(out)  # what killed attempts left (every attempt has ended by now)
        write_datalist(out, [records[case] for case in sorted(records)], seed=seed)

    seconds = time.perf_counter() - started
    failed = sorted(errors)
    report(1.0, f"{len(made)} made, {len(skipped)} skipped, {len(failed)} failed")
    return DatasetSummary(made=sorted(made), skipped=skipped, failed=failed, seconds=seconds, workers=slots, mode=mode,
                          cases_per_hour=3600.0 * len(made) / max(seconds, 1e-9), out=out, errors=errors, cancelled=cancelled)


def _run_in_process(*, out: Path, maker, settings: dict, threads: int, todo, finished, cancel) -> bool:
    """Run the cases one after the other here; True when ``cancel`` stopped the run."""
    previous = _set_torch_threads(threads)
    try:
        for case, index, seed in todo:
            if cancel is not None and cancel():
                return True
            finished(run_case(maker, str(out), case, index, seed, settings, threads))
        return False
    finally:
        if previous is not None:
            _set_torch_threads(previous)


def _run_on_ray(*, out: Path, maker, settings: dict, threads: int, todo, finished, cancel, workers: int | None,
                address: str | None, runtime_env: dict | None) -> tuple[int, bool]:
    """Run the cases as Ray tasks; the number of CPUs the cases ran on, and whether ``cancel`` stopped the run."""
    import ray
    from ray.exceptions import RayError, TaskCancelledError

    with _ray_session(workers, address, runtime_env):
        slots = max(1, int(ray.cluster_resources().get("CPU", workers or 1)))
        task = ray.remote(run_case).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
        queue: Iterator = iter(todo)
        pending: dict = {}
        stopped = False
        try:
            while True:
                # a bounded window keeps the driver's memory flat for any N, yet every CPU busy
                while not stopped and len(pending) < 2 * slots:
                    item = next(queue, None)
                    if item is None:
                        break
                    case, index, seed = item
                    pending[task.remote(maker, str(out), case, index, seed, settings, threads)] = case
                if not pending:
                    return slots, stopped
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
                for ref in ready:
                    case = pending.pop(ref)
                    try:
                        finished(ray.get(ref))
                    except TaskCancelledError:
                        pass
                    except RayError as exc:  # its worker died MAX_RETRIES + 1 times, or the task itself failed
                        finished({"case": case, "status": "failed", "error": _ray_error(exc)})
                if not stopped and cancel is not None and cancel():
                    stopped = True
                    for ref in pending:
                        ray.cancel(ref)  # a running case gets KeyboardInterrupt and removes its staging folder
        finally:
            for ref in pending:  # interrupted (Ctrl-C, an error): nothing keeps running for this run
                try:
                    ray.cancel(ref, force=address is None)
                except Exception:  # noqa: BLE001 - best effort while unwinding
                    pass


def _ray_error(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextmanager
def _ray_session(workers: int | None, address: str | None, runtime_env: dict | None) -> Iterator[None]:
    """A local Ray with ``workers`` CPUs, or a connection to the cluster at ``address``; left running when already up."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Keep GPUs visible to CPU-only tasks (a case may choose CUDA itself); this also silences Ray's FutureWarning.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    env = dict(runtime_env or {})
    env_vars = {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0", **env.get("env_vars", {})}
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    temp = None
    if address is None:
        path = [*_driver_path(), *filter(None, [env_vars.get("PYTHONPATH"), os.environ.get("PYTHONPATH")])]
        if path:
            env_vars["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
        env["env_vars"] = env_vars
        temp = str(fresh_dir(None, "tgray-"))  # short: Ray's socket paths have a limit
        try:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     _temp_dir=temp, runtime_env=env, **quiet)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    else:
        env["env_vars"] = env_vars
        try:
            ray.init(address=address, runtime_env=env, **quiet)
        except ConnectionError as exc:
            raise InputError(f"cannot join the Ray cluster at {address}: {_one_line(exc)}") from None
    try:
        yield
    finally:
        ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _driver_path() -> list[str]:
    """This process's import path outside the Python installation (the project, test helpers), for local workers."""
    installation = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    path = []
    for entry in sys.path:
        full = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(full) and not any(full == p or full.startswith(p + os.sep) for p in installation):
            path.append(full)
    return list(dict.fromkeys(path))


# -- the folder ------------------------------------------------------------------------------
@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.tumorgen-dataset.lock`` for the run (where ``fcntl`` exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    fd = os.open(out / LOCK, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another tumorgen dataset run is writing to {out}") from None
        yield
    finally:
        os.close(fd)


def _remove_partials(out: Path) -> None:
    for entry in out.iterdir():
        if entry.name.startswith(PARTIAL_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _existing_cases(out: Path, cases: dict[str, tuple[int, int]]) -> dict[str, dict]:
    """The records of the complete cases already in ``out``; incomplete case folders are removed (they are remade)."""
    records = {}
    for case, (index, seed) in cases.items():
        folder = out / case
        if not os.path.lexists(folder):
            continue
        if not folder.is_dir() or folder.is_symlink():
            raise InputError(f"cannot write case {case}: {folder} is in the way")
        if not is_complete(folder, case):
            shutil.rmtree(folder)
            continue
        record = {"case": case, "index": index, "seed": seed}
        try:
            record.update(json.loads((folder / f"{case}.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass  # a case without its record (copied in by hand): its files are all there is to list
        if record["seed"] != seed:
            raise InputError(f"{folder} was made with another seed; resume with the same --seed or use a new folder")
        records[case] = record
    return records


def write_datalist(out: Path, records: Iterable[dict], *, seed: int) -> Path:
    """``out/dataset.json``: the cases as a Decathlon / MONAI datalist (paths relative to ``out``), written atomically."""
    training = []
    for record in records:
        case = record["case"]
        files = [f"{case}/{name}" for name in case_files(case)]
        entry = {"image": files[:4], "label": files[4], "case": case, "seed": record["seed"]}
        entry.update({k: v for k, v in record.items() if k not in entry and k != "index"})
        training.append(entry)
    training.sort(key=lambda entry: entry["case"])
    datalist = {
        "name": out.name,
        "description": f"TumorGen synthetic brain-tumor MRI: {len(training)} cases, seed {seed}",
        "tensorImageSize": "3D",
        "modality": dict(enumerate(CONTRASTS)),
        "labels": LABELS,
        "numTraining": len(training),
        "numTest": 0,
        "training": training,
        "test": [],
    }
    datalist["modality"] = {str(k): v for k, v in datalist["modality"].items()}
    return write_text(out / DATALIST, json.dumps(datalist, indent=2) + "\n")
