"""Folders arithlab writes: it replaces only its own, one writer at a time, each file whole.

- Every folder arithlab makes (a run, an export, `data make`'s problem files) holds a
  marker file, MARKER, naming its kind. `--force` replaces only a folder with the marker
  of its kind; a folder of someone else's is refused, as are the current folder, any folder
  above it and the home folder, whatever they hold.
- A run has one writer: it holds LOCK (an flock, which the kernel drops when the holder
  dies, so a lock left by a killed process is free to take). The file names the holder's
  pid and host for the error a second writer gets.
- Files are written under a temporary name and renamed into place, and folders swapped
  by renames (`replace_folder`): a reader, or a run resumed after a kill, finds the old
  version or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from arithlab.errors import ArithlabError, notice

MARKER = ".arithlab"
LOCK = ".arithlab.lock"
OLD = ".old"  # suffix of a folder being replaced (replace_folder)


# --- files written whole --------------------------------------------------------------


def write_atomic(path: Path, data: str | bytes, tmp_suffix: str = ".tmp") -> None:
    """Write `path` whole or not at all: a temporary file, flushed to disk, renamed over it."""
    path = Path(path)
    tmp = path.with_name(path.name + tmp_suffix)
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_atomic(path: Path, line: str) -> None:
    """Add a line to `path` by rewriting it whole: a kill can cost the line, never leave half
    of it. The files appended to (metrics.jsonl: a line per evaluation) stay small."""
    before = path.read_text() if path.exists() else ""
    write_atomic(path, before + line + "\n")


def replace_folder(new: Path, final: Path) -> None:
    """Put folder `new` in the place of `final` by two renames. A kill between them leaves
    `final` missing and the old version whole beside it, which `recover_folder` restores."""
    old = final.with_name(final.name + OLD)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(final: Path) -> None:
    """Undo a `replace_folder` cut short between its renames: the old version back in place."""
    old = final.with_name(final.name + OLD)
    if not final.exists() and old.exists():
        os.replace(old, final)


# --- whose folder ---------------------------------------------------------------------


def kind_of(folder: Path) -> str | None:
    """The kind of arithlab folder `folder` is ("run", "export", "data"), or None."""
    try:
        return json.loads((folder / MARKER).read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def contents(folder: Path) -> list[Path]:
    """What `folder` holds besides the marker, its lock and the marker being written by
    another process (nothing if it does not exist)."""
    if not folder.is_dir():
        return []
    return [entry for entry in folder.iterdir() if not entry.name.startswith(MARKER)]


def check_place(folder: Path) -> None:
    """Refuse a folder arithlab must never write into as its own: the current folder, one
    above it, the home folder (or one above that), or a file."""
    here, home = Path.cwd().resolve(), Path.home().resolve()
    if folder.resolve() in (here, *here.parents, home, *home.parents):
        raise ArithlabError(
            f"{folder} is the current folder, one above it or the home folder; "
            "arithlab writes only into a folder of its own: choose another"
        )
    if folder.exists() and not folder.is_dir():
        raise ArithlabError(f"{folder} is a file, not a folder")


def check_target(folder: Path, kind: str, force: bool, hint: str = "--force replaces it") -> None:
    """Refuse to write a new `kind` into `folder` unless it is missing, empty, or (with
    `force`) arithlab's own `kind`; `hint` says what to do about an existing one."""
    check_place(folder)
    if not contents(folder):
        return
    found = kind_of(folder)
    if found is None:
        raise ArithlabError(
            f"{folder} is not empty and was not made by arithlab; it is left as it is: choose another folder"
        )
    if found != kind:
        raise ArithlabError(
            f"{folder} is an arithlab folder of another kind ({found}, not {kind}); it is left as it is: choose another"
        )
    if not force:
        raise ArithlabError(f"{folder} already exists: {hint}")


def mark(folder: Path, kind: str) -> None:
    """Make `folder` if need be and mark it as arithlab's `kind`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if kind_of(folder) != kind:
            from arithlab import __version__

            # A temporary name of this process's own: two processes may mark a new folder at once.
            marker = json.dumps({"kind": kind, "arithlab": __version__}) + "\n"
            write_atomic(folder / MARKER, marker, f".{os.getpid()}.tmp")
    except OSError as err:
        raise ArithlabError(f"{folder}: cannot write there ({err.strerror})") from None


def fresh(folder: Path, kind: str) -> None:
    """`folder` made (or emptied) and marked as arithlab's `kind`, once `check_target` allowed it."""
    mark(folder, kind)
    clear(folder)


def clear(folder: Path) -> None:
    """Delete what `folder` holds but its marker and lock (replacing it in place keeps the
    lock held)."""
    for entry in contents(folder):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# --- one writer -----------------------------------------------------------------------


@contextmanager
def lock(folder: Path):
    """Hold `folder`'s lock for the block: an ArithlabError naming the holder if another
    process holds it; a lock a killed process left on this host is taken over."""
    path = folder / LOCK
    fd = _acquire(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before closing: whoever opens it next makes a new one
        os.close(fd)


def _acquire(path: Path) -> int:
    import fcntl  # POSIX (Linux, macOS); imported here so that reading runs works without it

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ArithlabError(f"{path.parent}: cannot write there ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            who = f"pid {holder['pid']} on {holder['host']}" if holder else "another process"
            raise ArithlabError(f"{path.parent} is being written by {who}; one writer at a time: wait for it") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder let go and removed it between our open and our lock: again
    left = _holder(fd)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    if left and left["host"] != me["host"]:
        os.close(fd)
        raise ArithlabError(
            f"{path.parent} is locked by pid {left['pid']} on {left['host']}, which this machine cannot check; "
            f"if that process is gone, delete {path}"
        )
    if left:
        notice(f"{path.parent}: took over the lock left by pid {left['pid']}, which no longer runs")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> dict | None:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return holder if isinstance(holder, dict) and {"pid", "host"} <= holder.keys() else None
