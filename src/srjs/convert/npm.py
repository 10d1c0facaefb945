"""`npm:<package>@<version>/<path>` sources: fetch a package with `npm pack` into a cache.

The npm registry is the one model host reachable from CI, and UpscalerJS publishes trained
weights there. Packages are unpacked once into ~/.cache/srjs/npm/<name>@<version>/ (override
with SRJS_CACHE) and reused; a half-finished fetch never becomes visible (atomic rename).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from srjs.errors import BadInput

_SPEC = re.compile(r"^npm:(?P<name>(@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*)@(?P<version>[\w.+-]+)(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class NpmSpec:
    name: str
    version: str
    path: str  # inside the package, '' for the package root

    @property
    def label(self) -> str:
        return f"npm:{self.name}@{self.version}/{self.path}"


def is_npm_spec(source: str) -> bool:
    return str(source).startswith("npm:")


def parse_spec(source: str) -> NpmSpec:
    match = _SPEC.match(source)
    if not match:
        raise BadInput(f"'{source}' is not an npm source; expected npm:<package>@<version>/<path>")
    return NpmSpec(match["name"], match["version"], match["path"] or "")


def cache_root() -> Path:
    return Path(os.environ.get("SRJS_CACHE", Path.home() / ".cache" / "srjs"))


def package_dir(name: str, version: str) -> Path:
    """Unpacked package root (the tarball's `package/`), fetching it on first use."""
    target = cache_root() / "npm" / f"{name.replace('/', '+')}@{version}"
    if (target / "package.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        try:
            done = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", tmp],
                capture_output=True, text=True, timeout=600, cwd=tmp,
            )
        except FileNotFoundError:
            raise BadInput("npm is not installed; it is needed for npm: sources") from None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["npm pack failed"])[-1]
            raise BadInput(f"cannot fetch npm package {name}@{version}: {reason}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise BadInput(f"npm pack {name}@{version} produced no tarball")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")  # 'data' refuses absolute paths and links out
        root = unpacked / "package"
        if not (root / "package.json").exists():
            raise BadInput(f"npm package {name}@{version} has no package/package.json")
        try:
            root.rename(target)
        except OSError:
            if not (target / "package.json").exists():  # another process won the race: fine
                raise
    return target


def resolve(source: str) -> Path:
    """Local path of the file or folder an npm: source names (fetched if needed)."""
    spec = parse_spec(source)
    root = package_dir(spec.name, spec.version)
    path = (root / spec.path).resolve()
    if root.resolve() not in (path, *path.parents):
        raise BadInput(f"'{source}' points outside its package")
    if not path.exists():
        raise BadInput(f"'{spec.path}' does not exist in npm package {spec.name}@{spec.version}")
    return path


_SCALE_IN_PATH = re.compile(r"(?:^|/)x(\d)(?:/|$)|(\d)x(?:/|$)")


def package_hints(spec: NpmSpec) -> dict:
    """What an npm package's own model definition says about the model at `spec.path`.

    UpscalerJS model packages (package.json `@upscalerjs.modelFamily == "esrgan"`) declare
    `architecture` in getModelDefinition.js; their shared esrgan definition gives 'rdn'
    models inputRange [0, 255] and every other architecture [0, 1]. The name is
    the package's short name plus the folders of the path (esrgan-slim-x4, models-div2k-005-2x).
    """
    root = package_dir(spec.name, spec.version)
    hints: dict = {}
    short = spec.name.split("/")[-1]
    match = _SCALE_IN_PATH.search(spec.path)
    if match:
        hints["scale_hint"] = int(match[1] or match[2])
    inner = Path(spec.path)
    inner = inner if inner.suffix == "" else inner.parent  # models/x4 names a folder, x4/model.json a file
    folders = [part for part in inner.parts if part not in ("models", ".")]
    hints["name"] = "-".join([short, *folders]) if folders else short
    meta = json.loads((root / "package.json").read_text()).get("@upscalerjs", {})
    if meta.get("modelFamily") == "esrgan":
        for definition in root.glob("dist/cjs/models/*/src/getModelDefinition.js"):
            arch = re.search(r"architecture:\s*[\"'](\w+)[\"']", definition.read_text())
            if arch:
                hints["value_range"] = [0, 255] if arch[1] == "rdn" else [0, 1]
                hints["value_range_from"] = f"{spec.name}@{spec.version} model definition ({arch[1]})"
    return hints
