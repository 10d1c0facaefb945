"""`npm:<package>@<version>/<path>` sources: fetch a package with `npm pack` into a cache.

The npm registry is the one model host reachable from CI, and UpscalerJS publishes trained
weights there. Packages are unpacked once into ~/.cache/srjs/npm/<name>@<version>/ (override
with SRJS_CACHE) and reused; a half-finished fetch never becomes visible (atomic rename).
A version given as a tag (`latest`) is resolved to the exact version it names now before
anything is cached or keyed, so a moved tag fetches the new package. Tarballs are untrusted:
member count and sizes are capped as for wheels, and no path may name two things. The
package.json fields srjs reads are type-checked (`package_json`).
"""
from __future__ import annotations

import json
import os
import re
import gzip
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from srjs.convert import archives
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


# An exact semver version; anything else the spec accepts (latest, next, beta) is a tag.
_EXACT = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_PINNED: dict[tuple[str, str], str] = {}  # (name, tag) -> exact version, once per process


def exact_version(name: str, version: str) -> str:
    """`version` when it is exact, else the one version the registry's tag names now."""
    if _EXACT.match(version):
        return version
    if (name, version) not in _PINNED:
        _PINNED[name, version] = _registry_version(name, version)
    return _PINNED[name, version]


def _registry_version(name: str, tag: str) -> str:
    try:
        done = subprocess.run(["npm", "view", f"{name}@{tag}", "version", "--json"],
                              capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise BadInput("npm is not installed; it is needed for npm: sources") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"npm view {name}@{tag} timed out") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["npm view failed"])[-1]
        raise BadInput(f"cannot resolve npm version {name}@{tag}: {reason}")
    try:
        found = json.loads(done.stdout or "null")
    except ValueError:
        found = None
    if isinstance(found, list):  # a range matching several versions: the user must choose
        if len(found) != 1:
            raise BadInput(f"npm:{name}@{tag} names {len(found)} versions; give one exact version")
        found = found[0]
    if not isinstance(found, str) or not _EXACT.match(found):
        raise BadInput(f"npm has no version {name}@{tag}")
    return found


def pin(source: str) -> str:
    """The npm: source with an exact version (a tag resolved now); exact sources unchanged."""
    spec = parse_spec(source)
    exact = exact_version(spec.name, spec.version)
    return source if exact == spec.version else NpmSpec(spec.name, exact, spec.path).label


def package_dir(name: str, version: str) -> Path:
    """Unpacked package root (the tarball's `package/`), fetching it on first use."""
    version = exact_version(name, version)
    target = cache_root() / "npm" / f"{name.replace('/', '+')}@{version}"
    if (target / "package.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        unpacked = Path(tmp) / "unpacked"
        safe_untar(_pack(name, version, Path(tmp)), unpacked)
        root = unpacked / "package"
        if not (root / "package.json").is_file():
            raise BadInput(f"npm package {name}@{version} has no package/package.json")
        try:
            root.rename(target)
        except OSError:
            if not (target / "package.json").exists():  # another process won the race: fine
                raise
    return target


def _pack(name: str, version: str, dest: Path) -> Path:
    """The package's tarball, downloaded by `npm pack` into `dest` (no install scripts run)."""
    try:
        done = subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(dest)],
            capture_output=True, text=True, timeout=600, cwd=dest,
        )
    except FileNotFoundError:
        raise BadInput("npm is not installed; it is needed for npm: sources") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"npm pack {name}@{version} timed out") from None
    if done.returncode != 0:
        raise BadInput(_why_not_packed(name, version, done.stderr))
    tarballs = list(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise BadInput(f"npm pack {name}@{version} produced no tarball")
    return tarballs[0]


def _why_not_packed(name: str, version: str, stderr: str) -> str:
    """What to tell the user when `npm pack` failed: no such package, no such version (with
    the newest ones), else npm's own last line. Asks the registry once more (`npm view`)."""
    try:
        done = subprocess.run(["npm", "view", name, "versions", "--json"], capture_output=True, text=True,
                              timeout=120)
        found = json.loads(done.stdout or "null")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        found = None
    if isinstance(found, dict) and (found.get("error") or {}).get("code") == "E404":
        return f"npm has no package '{name}' (check the spelling and the scope)"
    if isinstance(found, str):
        found = [found]
    if isinstance(found, list) and all(isinstance(v, str) for v in found) and version not in found:
        return f"npm has no version {version} of '{name}' (newest: {', '.join(found[-5:][::-1])})"
    reason = (stderr.strip().splitlines() or ["npm pack failed"])[-1]
    return f"cannot fetch npm package {name}@{version}: {reason}"


def safe_untar(tarball: Path, dest: Path) -> None:
    """Unpack an npm tarball into `dest` within the wheels' caps (BadInput, nothing written)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = []
            for member in tar:  # headers only; stop early on a flood of members
                members.append(member)
                if len(members) > archives.MAX_MEMBERS:
                    break
            archives.check_sizes(tarball.name, [(m.name, m.size) for m in members])
            archives.check_layout(tarball.name, [(m.name, m.isdir()) for m in members])
            # 'data' refuses absolute paths, links out of dest and device files
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInput(f"'{tarball.name}' is not a readable npm tarball: {first}") from None


# The package.json fields srjs reads and the JSON types each may have; in objects, only the
# listed keys are kept (and checked). null counts as absent.
MAX_PACKAGE_JSON_BYTES = 4 << 20
_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,), "version": (str,), "homepage": (str,), "@upscalerjs": (dict,),
    "license": (str, dict), "author": (str, dict), "repository": (str, dict),
}
_SUBFIELDS: dict[str, dict[str, type]] = {
    "@upscalerjs": {"modelFamily": str}, "license": {"type": str},
    "author": {"name": str}, "repository": {"url": str},
}
_JSON_TYPES = {str: "a string", dict: "an object"}


def package_json(root: Path, label: str) -> dict:
    """The package.json fields srjs reads (`_FIELDS`), type-checked; BadInput names the field."""
    path = Path(root) / "package.json"
    try:
        if path.stat().st_size > MAX_PACKAGE_JSON_BYTES:
            raise BadInput(f"{label}: package.json is over {MAX_PACKAGE_JSON_BYTES} bytes")
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise BadInput(f"{label}: package.json is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{label}: package.json is not a JSON object")
    fields = {}
    for key, kinds in _FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        _check_type(label, key, value, kinds)
        if isinstance(value, dict):
            value = {sub: value[sub] for sub in _SUBFIELDS[key] if value.get(sub) is not None}
            for sub, kind in _SUBFIELDS[key].items():
                if sub in value:
                    _check_type(label, f"{key}.{sub}", value[sub], (kind,))
        fields[key] = value
    return fields


def _check_type(label: str, key: str, value, kinds: tuple[type, ...]) -> None:
    if not isinstance(value, kinds):
        want = " or ".join(_JSON_TYPES[k] for k in kinds)
        raise BadInput(f"{label}: package.json field '{key}' must be {want}, not {type(value).__name__}")


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
    meta = package_json(root, f"npm:{spec.name}@{spec.version}").get("@upscalerjs", {})
    if meta.get("modelFamily") == "esrgan":
        for definition in sorted(root.glob("dist/cjs/models/*/src/getModelDefinition.js")):
            if not definition.is_file():
                continue
            with open(definition, encoding="utf-8", errors="replace") as handle:
                text = handle.read(1 << 20)  # a model definition is a few hundred bytes
            arch = re.search(r"architecture:\s*[\"'](\w+)[\"']", text)
            if arch:
                hints["value_range"] = [0, 255] if arch[1] == "rdn" else [0, 1]
                hints["value_range_from"] = f"{spec.name}@{spec.version} model definition ({arch[1]})"
    return hints
