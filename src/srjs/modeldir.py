"""The model dir: what `convert` and `optimize` write and every later stage reads.

Layout (DESIGN.md): manifest.json, keras/model.keras, saved_model/, tfjs_layers/, tfjs_graph/.
Writes are atomic: a dir is built in a hidden temporary sibling and renamed into place, so a
failed or interrupted run never leaves a half-written model dir behind.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import srjs
from srjs import atomic, strict_json
from srjs.errors import BadInput

MANIFEST = "manifest.json"
SCHEMA = "srjs.manifest/1"
KERAS_FILE = "keras/model.keras"
SAVED_MODEL_DIR = "saved_model"
TFJS_LAYERS_DIR = "tfjs_layers"
TFJS_GRAPH_DIR = "tfjs_graph"


@dataclass
class Manifest:
    name: str
    arch: str
    arch_params: dict
    scale: int
    value_range: list  # [0, 1] or [0, 255]: what the model takes and returns
    source: dict  # {path, format, sha256}
    value_range_from: str = ""  # why: an npm package definition, a convention, a probe, a flag
    parent: str | None = None  # the model dir a variant was made from
    recipe: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # relative path -> {bytes, gzip_bytes (shipped only), sha256}
    channels: int = 3  # image channels in and out: 1 grayscale, 3 RGB, 4 RGBA
    arch_params_assumed: dict = field(default_factory=dict)  # param -> why a default was taken
    cost: dict = field(default_factory=dict)  # {params, conv_macs_per_pixel}, set on every write
    srjs_version: str = srjs.__version__
    schema: str = SCHEMA

    @property
    def value_max(self) -> float:
        return float(self.value_range[1])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# gzip level of every `gzip_bytes`: 6 is gzip(1)'s and zlib's default and Apache mod_deflate's
# (nginx defaults to 1, larger files). On the official RealESRGAN_x4plus shards level 9 saves
# 1.3% over 6 and takes twice as long (57 s vs 31 s for 67 MB on one core).
GZIP_LEVEL = 6
# Folders a browser downloads; only their files get a gzip size (keras/ and saved_model/
# never go over the wire, so compressing them would only cost time).
SHIPPED_DIRS = ("tfjs_layers", "tfjs_graph", "onnx")


def gzip_size(data: bytes) -> int:
    """Bytes of `data` after gzip at GZIP_LEVEL (what a server sends for it)."""
    return len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


def file_entry(path: Path, *, gzipped: bool = True) -> dict:
    """Size facts a user quotes: raw bytes, bytes after gzip -6 (what a server sends; None
    with gzipped=False), sha256."""
    if not gzipped:
        return {"bytes": path.stat().st_size, "gzip_bytes": None, "sha256": sha256_file(path)}
    data = path.read_bytes()
    return {"bytes": len(data), "gzip_bytes": gzip_size(data), "sha256": hashlib.sha256(data).hexdigest()}


def _ships(root: Path, path: Path) -> bool:
    return path.relative_to(root).parts[0] in SHIPPED_DIRS


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class FileIndex:
    """Index a model dir's files while other work goes on.

    start(folder) hashes (and for SHIPPED_DIRS gzips) the files under `folder` in background
    threads (zlib and hashlib release the GIL, so this overlaps TensorFlow's Python-bound
    export steps); entries() returns what `index_files` would, reusing each started result
    whose file is unchanged (same size and mtime) and computing the rest.
    """

    def __init__(self, root: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.root = Path(root)
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
        self.started: dict[Path, tuple] = {}

    def _submit(self, path: Path):
        return self.pool.submit(file_entry, path, gzipped=_ships(self.root, path))

    def start(self, folder: Path) -> None:
        folder = Path(folder)
        for path in sorted(folder.rglob("*")) if folder.is_dir() else [folder]:
            if path.is_file() and path.name != MANIFEST:
                self.started[path] = (_stamp(path), self._submit(path))

    def entries(self) -> dict:
        paths = [p for p in sorted(self.root.rglob("*")) if p.is_file() and p.name != MANIFEST]
        futures = []
        for path in paths:
            stamp, future = self.started.get(path, (None, None))
            futures.append(future if future is not None and stamp == _stamp(path) else self._submit(path))
        return {str(p.relative_to(self.root)): f.result() for p, f in zip(paths, futures)}

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FileIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def index_files(root: Path) -> dict:
    """relative path -> file_entry for every file under `root` but the manifest; gzip sizes for
    SHIPPED_DIRS only, files compressed in parallel (zlib and hashlib release the GIL)."""
    with FileIndex(root) as index:
        return index.entries()


def write_manifest(root: Path, manifest: Manifest, index: FileIndex | None = None) -> Manifest:
    """Write `manifest` into `root` with its file index (`index`: one already started)."""
    manifest.files = index.entries() if index is not None else index_files(root)
    (root / MANIFEST).write_text(manifest_text(manifest))
    return manifest


def manifest_text(manifest: Manifest) -> str:
    """manifest.json's text: strict JSON; measured results may be infinite (PSNR of identical
    outputs), written as "inf" like evaluate's JSON and read back as floats."""
    from srjs import manifest_schema, schema

    data = asdict(manifest)
    data["results"] = strict_json.encode_non_finite(data["results"])
    text = strict_json.dumps(data, indent=2, sort_keys=True) + "\n"
    # What srjs writes, srjs must read back: a name from --name with a NUL or a newline is
    # refused here, before the model dir is renamed into place.
    schema.check(json.loads(text), manifest_schema.manifest_spec(SCHEMA, Manifest), "the manifest being written")
    return text


MAX_MANIFEST_BYTES = 16 << 20
MAX_LINEAGE = 64  # variants of variants; a longer chain of parents is a loop or a forgery


def _what_is_inside(folder: Path) -> str:
    """A hint for a folder given where a model dir belongs: the model dirs inside it (a build
    folder's models/<variant>/, a sweep folder's variants), or that it is an npm package."""
    if not folder.is_dir():
        return ""
    found = sorted(p.parent for pattern in (f"*/{MANIFEST}", f"models/*/{MANIFEST}")
                   for p in folder.glob(pattern) if p.is_file())
    if found:
        shown = ", ".join(str(p) for p in found[:6]) + (", ..." if len(found) > 6 else "")
        return f"; the model dirs inside it: {shown}"
    if (folder / "package.json").is_file() and (folder / "models").is_dir():
        return "; it is an npm package folder (`srjs serve` takes it), made from model dirs"
    return ""


def read_manifest(root: Path) -> Manifest:
    """The model dir's manifest, checked against its schema (BadInput naming the field)."""
    from srjs import manifest_schema, schema

    path = Path(root) / MANIFEST
    if not path.is_file():
        raise BadInput(f"'{root}' is not an srjs model dir (no {MANIFEST})" + _what_is_inside(Path(root)))
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BadInput(f"'{path}' is larger than {MAX_MANIFEST_BYTES} bytes; not an srjs manifest")
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInput(f"'{path}' is not a valid srjs manifest: {first}") from None
    schema.check(data, manifest_schema.manifest_spec(SCHEMA, Manifest), str(path))
    return Manifest(**data | {"results": strict_json.decode_non_finite(data.get("results", {}))})


def parent_dir(root: Path, manifest: Manifest) -> Path | None:
    """The model dir a variant was made from (relative parents are taken from `root`), or None."""
    if not manifest.parent:
        return None
    parent = Path(manifest.parent)
    return parent if parent.is_absolute() else Path(root) / parent


def lineage(root: Path) -> list[tuple[Path, Manifest]]:
    """`root` and its ancestors that are model dirs, nearest first; BadInput on a loop."""
    chain: list[tuple[Path, Manifest]] = []
    seen: set[Path] = set()
    here: Path | None = Path(root)
    while here is not None and (here / MANIFEST).is_file():
        key = here.resolve()
        if key in seen or len(chain) >= MAX_LINEAGE:
            raise BadInput(f"'{root}': its manifests' 'parent' entries form a loop (at '{here}')")
        seen.add(key)
        manifest = read_manifest(here)
        chain.append((here, manifest))
        here = parent_dir(here, manifest)
    return chain


def record_results(root: Path, **results) -> Manifest:
    """Merge measured facts (e.g. seam_free_padding) into the manifest's `results`, atomically.

    Only manifest.json changes, so the file index stays valid.
    """
    manifest = read_manifest(root)
    manifest.results.update(results)
    atomic.write_text(Path(root) / MANIFEST, manifest_text(manifest))
    return manifest


def atomic_dir(out: Path):
    """Context manager: a temporary sibling of `out`, renamed onto it at the end (see
    `srjs.atomic.atomic_dir`); only an srjs model dir (has a manifest) or an empty folder is
    ever replaced."""
    return atomic.atomic_dir(out, is_ours=lambda p: (p / MANIFEST).exists(), what="an srjs model dir")


def load_keras(root: Path):
    """The model dir's full Keras model, after its config passed the allowlist gate."""
    from srjs.convert import gate

    path = Path(root) / KERAS_FILE
    if not path.is_file():
        raise BadInput(f"'{root}' has no {KERAS_FILE}")
    return gate.load_keras_file(path)
