"""Limits and layout checks shared by the untrusted archives srjs unpacks (wheels, npm tarballs).

Everything here runs on the archive's member list, before a byte is written: a refused
archive leaves nothing behind.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from srjs.errors import BadInput

MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 2 << 30     # one unpacked file
MAX_TOTAL_BYTES = 4 << 30      # the whole unpacked archive


def check_sizes(label: str, sizes: list[tuple[str, int]]) -> None:
    """(member name, unpacked bytes) pairs within MAX_MEMBERS / MAX_MEMBER_BYTES / MAX_TOTAL_BYTES."""
    if len(sizes) > MAX_MEMBERS:
        raise BadInput(f"'{label}' has {len(sizes)} members (limit {MAX_MEMBERS})")
    for name, size in sizes:
        if size > MAX_MEMBER_BYTES:
            raise BadInput(f"'{label}' member {name!r} is {size} bytes (limit {MAX_MEMBER_BYTES})")
    total = sum(size for _, size in sizes)
    if total > MAX_TOTAL_BYTES:
        raise BadInput(f"'{label}' unpacks to {total} bytes (limit {MAX_TOTAL_BYTES})")


def check_layout(label: str, entries: list[tuple[str, bool]]) -> None:
    """(member name, is a folder) pairs name each path once: no file twice, no file where
    another member needs a folder (unpacking either would overwrite or fail half-way)."""
    files: set[str] = set()
    folders: set[str] = set()
    for name, is_dir in entries:
        parts = PurePosixPath(name).parts
        path = "/".join(parts)
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if is_dir:
            folders.add(path)
        elif path in files:
            raise BadInput(f"'{label}' holds member {path!r} twice")
        else:
            files.add(path)
    clash = sorted(files & folders)
    if clash:
        raise BadInput(f"'{label}' has a file {clash[0]!r} where other members need a folder")
