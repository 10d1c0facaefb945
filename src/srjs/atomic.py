"""Atomic writes: a file or folder appears whole or not at all.

A failed or interrupted run (Ctrl-C, a full disk, a bad input found half-way) must never
leave a half-written model dir, package, report or image behind, and must never wipe a
folder that srjs did not write. Everything srjs writes goes through here.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from srjs.errors import BadInput


@contextlib.contextmanager
def atomic_dir(out: Path, *, is_ours: Callable[[Path], bool], what: str) -> Iterator[Path]:
    """Yield a temporary sibling of `out`; on success it replaces `out` in one rename.

    An existing `out` is replaced only if it is empty or `is_ours(out)` (an earlier output
    of the same kind), so a typo cannot wipe an unrelated folder; otherwise BadInput naming
    `what` the folder should have been. The result is world-readable (0755), like any
    folder a user publishes.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_ours(out))):
        raise BadInput(f"'{out}' exists and is not {what}; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private
    try:
        yield tmp
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(trash / "old")
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    For writers that want a path (PIL, numpy, matplotlib): `with atomic_file(p) as tmp:
    image.save(tmp, format="PNG")`. The suffix is kept so format sniffing still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def copy_file(source: Path, path: Path) -> None:
    """Copy `source` to `path` atomically."""
    with atomic_file(path) as tmp:
        shutil.copyfile(source, tmp)
