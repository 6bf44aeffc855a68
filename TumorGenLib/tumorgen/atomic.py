"""Whole-or-absent outputs: a file, a folder or a set of them appears complete under its name, or not at all.

Everything is written under a temporary name in the destination folder (the
same file system, so the final rename is atomic) and renamed into place when
complete. On any failure, an interruption included, the temporary is removed
and the destination is as it was. Output files follow the process umask
(``mkstemp`` alone would make them 0600).

* :func:`staged_file`: a temporary path that becomes ``path``, for writers that
  need a file name (SimpleITK, Pillow, Matplotlib, safetensors);
* :func:`write_bytes`, :func:`write_text`: one file;
* :func:`staged_into`: stage several files and folders, then move them all into
  a folder; a failure leaves no folder that was not there before;
* :func:`replace_dir`: a folder replaced as a whole;
* :func:`check_output_folder`: an output folder's checks before the work,
  creating nothing; :func:`check_writable_dir`: the same, creating it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tumorgen.errors import InputError

# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: Prefix of the hidden folders in which outputs wait until they are complete.
STAGING_PREFIX = ".tumorgen-staging-"


# -- one file -------------------------------------------------------------------
@contextmanager
def staged_file(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it is renamed onto ``path``.

    Args:
        path: the file to write; its folder must exist.
        suffix: the ending the temporary name keeps (``.nii.gz``, ``.png``), for
            writers that choose the format by the file name.

    On an error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    stem = path.name[: -len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.partial-", suffix=suffix)
    os.close(fd)
    try:
        yield Path(name)
        os.chmod(name, 0o666 & ~_UMASK)
        os.replace(name, path)
    except BaseException:
        _remove_quietly(name)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`staged_file`)."""
    with staged_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` atomically (see :func:`staged_file`)."""
    with staged_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


# -- several files and folders ------------------------------------------------------
@contextmanager
def staged_into(folder: str | os.PathLike, *, staging_name: str | None = None) -> Iterator[Path]:
    """Yield an empty hidden folder inside ``folder``; when the block ends without error, move all it holds into ``folder``.

    A file replaces a file of the same name by one rename; a folder replaces a
    folder of the same name as a whole. ``folder`` and its missing parents are
    created on entry; if the block fails, the staging folder is removed and so
    are the folders created here, so that a failed command leaves the file
    system as it found it.

    Args:
        folder: where the outputs go.
        staging_name: a fixed name for the staging folder (the backend uses
            ``STAGING_PREFIX<pid>``, which its runner removes after a kill);
            a fresh unique name by default.

    Raises:
        InputError: ``folder`` is a file or cannot be created or written, or an
            output would replace a file by a folder or a folder by a file.
    """
    folder = Path(folder)
    created = _make_dirs(folder)
    try:
        try:
            staging = _make_staging(folder, staging_name)
        except OSError as exc:
            raise InputError(f"output folder {folder} is not writable: {exc.strerror}") from None
        try:
            yield staging
            _publish(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_created(created)
        raise


def replace_dir(folder: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(new)`` on a fresh folder, then put it in place of ``folder``, replacing what was there.

    If ``write`` raises, the staging folder is removed and ``folder`` is untouched.
    Missing parents are created; a file-system failure is an :class:`OSError`
    (callers such as the registration cache treat it as "not cached").
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = _make_staging(folder.parent)
    try:
        new = staging / folder.name
        new.mkdir()  # inside the staging folder, so that it gets the umask's permissions, not mkdtemp's 0700
        write(new)
        _publish(staging, folder.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def fresh_dir(parent: str | os.PathLike | None, prefix: str) -> Path:
    """A new empty folder with a unique name starting with ``prefix`` in ``parent`` (the system's temporary folder when None)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=None if parent is None else str(parent)))


def publish_dir_once(staging: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Rename the complete folder ``staging`` to ``target`` unless ``target`` exists (another writer finished first).

    The rename is atomic: ``target`` is whole or absent. Returns True when this call published it, False when
    ``target`` was already there (``staging`` is then left for the caller to remove).
    """
    try:
        os.rename(staging, target)
    except OSError:
        if not Path(target).exists():
            raise
        return False
    return True


def _make_staging(folder: Path, name: str | None = None) -> Path:
    """An empty hidden folder in ``folder``: a fresh unique one, or ``name`` (replacing a stale one of that name)."""
    if name is None:
        return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    staging = folder / name
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed process that had the same pid
    staging.mkdir()
    return staging


def _publish(staging: Path, folder: Path) -> None:
    """Move every entry of ``staging`` into ``folder``."""
    entries = sorted(staging.iterdir())
    # Clashes are found before anything moves: finding one half-way would leave half the outputs published.
    for entry in entries:
        target = folder / entry.name
        if target.exists() and target.is_dir() != entry.is_dir():
            kind = "folder" if target.is_dir() else "file"
            raise InputError(f"cannot write {target}: a {kind} of that name is in the way")
    for entry in entries:
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            _swap_dir(entry, target)
        else:
            os.replace(entry, target)


def _swap_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` in place of the existing folder ``target`` (a rename cannot replace a non-empty folder)."""
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
    try:
        os.replace(target, trash / target.name)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(trash / target.name, target)  # the old folder back rather than none
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    if folder.exists():
        if not folder.is_dir():
            raise InputError(f"output folder {folder} is a file, not a folder")
        return []
    missing = []
    ancestor = folder
    while not ancestor.exists():
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"output folder {folder} cannot be created: {ancestor} is a file")
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # made meanwhile by someone else: not ours to remove
            continue
        except OSError as exc:
            _remove_created(created)
            raise InputError(f"output folder {folder} cannot be created: {exc.strerror}") from None
        created.append(path)
    return created


def _remove_created(created: list[Path]) -> None:
    """Remove the folders :func:`_make_dirs` created, innermost first, as long as they are empty."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:  # something else was written there meanwhile: keep it
            return


# -- checks -------------------------------------------------------------------------
def check_output_folder(folder: str | os.PathLike) -> Path:
    """Check that ``folder`` is, or can become, a folder that accepts new files; create nothing.

    Commands call this before their work, so that a bad ``--out`` fails at once,
    and create the folder only with their outputs (:func:`staged_into`).
    """
    folder = Path(folder)
    if folder.exists():
        return check_writable_dir(folder, create=False)
    ancestor = folder.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"output folder {folder} cannot be created: {ancestor} is a file")
    try:
        _probe(ancestor)
    except OSError as exc:
        raise InputError(f"output folder {folder} cannot be created: {exc.strerror}") from None
    return folder


def check_writable_dir(folder: str | os.PathLike, *, create: bool = True) -> Path:
    """Make sure ``folder`` exists (creating it if asked) and accepts new files."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} is a file, not a folder")
    if not folder.exists():
        if not create:
            raise InputError(f"output folder {folder} does not exist")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output folder {folder} cannot be created: {exc.strerror}") from None
    try:
        _probe(folder)
    except OSError as exc:
        raise InputError(f"output folder {folder} is not writable: {exc.strerror}") from None
    return folder


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the one sure test that it accepts new files."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".tumorgen-probe-"):
        pass


def _remove_quietly(name: str | os.PathLike) -> None:
    try:
        os.remove(name)
    except OSError:
        pass
