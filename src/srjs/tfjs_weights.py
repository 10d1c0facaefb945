"""TF.js weights: the one place that reads, decodes, encodes and writes weight shards.

model.json's `weightsManifest` lists groups of shard files; each group's shards, joined,
hold its weights back to back. A weight is stored as float32/int32, as float16, or affine
quantized (`value = q * scale + min`, q uint8/uint16), decoded by tfjs-core in JS doubles
and kept as float32. Shard paths come from untrusted files, so every one is resolved inside
the model folder first.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srjs.errors import BadInput

# TF.js dtype name -> the numpy dtype its bytes hold (little-endian, as TF.js writes them)
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(kind).newbyteorder("<") for name, kind in {
        "float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16,
        "float16": np.float16, "int8": np.int8, "int16": np.int16, "bool": np.bool_,
    }.items()
}
QUANTIZED = ("uint8", "uint16", "float16")
# Sanity bound on one weight's element count: far above any SR net, far below what would
# make an allocation from a hostile manifest hurt.
MAX_ELEMENTS = 1 << 31


@dataclass(frozen=True)
class Encoding:
    """How one tensor is stored in the shards.

    dtype: float32 | float16 | uint8 | uint16. For uint8/uint16 the stored q decodes to
    `q * scale + min`; scale and min are in the weight's own units.
    """

    dtype: str = "float32"
    scale: float | None = None
    min: float | None = None

    def __post_init__(self):
        if self.dtype not in ("float32", "float16", "uint8", "uint16"):
            raise BadInput(f"unknown weight encoding dtype '{self.dtype}' (float32, float16, uint8, uint16)")
        if self.dtype in ("uint8", "uint16") and (self.scale is None or self.min is None):
            raise BadInput(f"{self.dtype} encoding needs scale and min")

    @property
    def levels(self) -> int:
        """Largest stored integer (255 for uint8, 65535 for uint16); 0 for float encodings."""
        return {"uint8": 255, "uint16": 65535}.get(self.dtype, 0)

    def manifest_entry(self) -> dict | None:
        """The `quantization` object tensorflowjs writes for this encoding (None: plain)."""
        if self.dtype == "float32":
            return None
        if self.dtype == "float16":
            return {"dtype": "float16", "original_dtype": "float32"}
        return {"dtype": self.dtype, "scale": float(self.scale), "min": float(self.min),
                "original_dtype": "float32"}


def encoding_of(spec: dict, where: str) -> Encoding:
    """The Encoding of one weightsManifest entry; BadInput for dtypes TF.js cannot decode."""
    if not isinstance(spec.get("name"), str):
        raise BadInput(f"{where}: a weightsManifest entry has no name (got {spec.get('name')!r:.60})")
    quant = spec.get("quantization")
    if quant is None:
        dtype = spec.get("dtype", "float32")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise BadInput(f"{where}: weight '{spec.get('name')}' has unsupported dtype '{dtype}'")
        return Encoding()  # int dtypes keep their own storage: see `stored_dtype`
    if not isinstance(quant, dict) or not isinstance(quant.get("dtype"), str) or quant["dtype"] not in QUANTIZED:
        dtype = quant.get("dtype") if isinstance(quant, dict) else quant
        raise BadInput(f"{where}: weight '{spec.get('name')}' has unsupported quantization dtype '{dtype}'")
    if quant["dtype"] == "float16":
        return Encoding("float16")
    scale, low = quant.get("scale"), quant.get("min")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (scale, low)):
        raise BadInput(f"{where}: weight '{spec.get('name')}' has no finite quantization scale/min")
    return Encoding(quant["dtype"], float(scale), float(low))


def stored_dtype(spec: dict) -> np.dtype:
    """numpy dtype of a manifest entry's bytes in the shards."""
    quant = spec.get("quantization")
    return DTYPES[quant["dtype"] if quant else spec.get("dtype", "float32")]


def element_count(spec: dict, where: str) -> int:
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise BadInput(f"{where}: weight '{spec.get('name')}' has no valid shape")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise BadInput(f"{where}: weight '{spec.get('name')}' claims {count} elements (limit {MAX_ELEMENTS})")
    return count


def weight_bytes(spec: dict, where: str) -> int:
    """Bytes one manifest entry occupies in its group's shards."""
    encoding_of(spec, where)  # refuses dtypes TF.js cannot decode
    return element_count(spec, where) * stored_dtype(spec).itemsize


def resolve_inside(folder: Path, relative: str, where: str) -> Path:
    """`folder / relative`, refusing anything that would leave `folder` (BadInput, exit 2).

    Manifest paths are untrusted: `../x`, absolute paths and symlinks out are all refused.
    """
    if not isinstance(relative, str) or not relative or "\\" in relative or "\x00" in relative:
        raise BadInput(f"{where}: weight shard path {relative!r} is not a plain relative path")
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise BadInput(f"{where}: weight shard path '{relative}' leaves the model folder")
    root = Path(folder).resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise BadInput(f"{where}: weight shard path '{relative}' leaves the model folder")
    return root / rel


def read_model_json(path: Path) -> dict:
    """A model.json as a dict; BadInput (exit 2) for missing, unreadable or non-object JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"'{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInput(f"'{path}' is not a readable JSON file: {first}") from None
    if not isinstance(data, dict):
        raise BadInput(f"'{path}' holds JSON {type(data).__name__}, not a model.json object")
    return data


def manifest_groups(data: dict, where: str) -> list[dict]:
    """model.json's weightsManifest, checked to be a list of {paths: [...], weights: [...]}."""
    groups = data.get("weightsManifest")
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("paths", []), list)
            and isinstance(g.get("weights", []), list)
            and all(isinstance(w, dict) for w in g.get("weights", [])) for g in groups):
        raise BadInput(f"{where}: weightsManifest is not a list of {{paths, weights}} groups")
    return groups


def read_group_bytes(folder: Path, group: dict, where: str) -> bytes:
    """The joined shards of one manifest group (paths resolved inside `folder`)."""
    parts = []
    for shard in group.get("paths") or []:
        path = resolve_inside(folder, shard, where)
        try:
            parts.append(path.read_bytes())
        except OSError:
            raise BadInput(f"{where}: weight shard '{shard}' is missing") from None
    return b"".join(parts)


def decode(stored: np.ndarray, enc: Encoding) -> np.ndarray:
    """The float32 values TF.js computes from stored values (`q * scale + min` in doubles)."""
    if enc.dtype in ("uint8", "uint16"):
        return (np.asarray(stored).astype(np.float64) * enc.scale + enc.min).astype(np.float32)
    return np.asarray(stored).astype(np.float32)


def quantize_tensor(values: np.ndarray, enc: Encoding) -> np.ndarray:
    """The stored array for `values` under `enc` (uint: round((w - min) / scale), clipped)."""
    values = np.asarray(values, dtype=np.float32)
    if enc.dtype == "float32":
        return values
    if enc.dtype == "float16":
        return values.astype(np.float16)
    q = np.round((values.astype(np.float64) - enc.min) / enc.scale)
    return np.clip(q, 0, enc.levels).astype(DTYPES[enc.dtype])


def read_weights(model_json: Path, data: dict | None = None) -> dict[str, np.ndarray]:
    """`name` -> float32 (or int32) array for every weight of a TF.js model, in manifest order.

    Decoded exactly as tfjs-core's decodeWeights does; BadInput for shards that are missing,
    short, long, or outside the model folder.
    """
    model_json = Path(model_json)
    where = str(model_json)
    groups = manifest_groups(read_model_json(model_json) if data is None else data, where)
    weights = {}
    for group in groups:
        buffer = read_group_bytes(model_json.parent, group, where)
        offset = 0
        for spec in group.get("weights") or []:
            enc = encoding_of(spec, where)
            stored = stored_dtype(spec)
            count = element_count(spec, where)
            nbytes = count * stored.itemsize
            if offset + nbytes > len(buffer):
                raise BadInput(f"{where}: weight shards are shorter than the manifest says")
            values = np.frombuffer(buffer, stored, count, offset).reshape(spec["shape"])
            offset += nbytes
            is_float = spec.get("quantization") is not None or stored.kind == "f"
            weights[spec.get("name")] = (decode(values, enc) if is_float
                                         else values.astype(values.dtype.newbyteorder("=")))
        if offset != len(buffer):
            raise BadInput(f"{where}: weight shards are longer than the manifest says")
    return weights


def write_weights(folder: Path, tensors: list[tuple[str, np.ndarray, Encoding]],
                  shard_bytes: int = 4 << 20) -> list[dict]:
    """Write `tensors` as one group of shards in `folder`; return the weightsManifest.

    Shards are named and split as tensorflowjs does (`group1-shard1of2.bin`, each full shard
    exactly `shard_bytes`, tensors may straddle shards), so stock TF.js loads them.
    """
    if shard_bytes < 1:
        raise BadInput(f"shard size must be at least 1 byte, got {shard_bytes}")
    entries, parts = [], []
    for name, values, enc in tensors:
        plain = _plain_dtype(values) if enc.dtype == "float32" else "float32"
        stored = np.asarray(values, DTYPES[plain]) if plain != "float32" else quantize_tensor(values, enc)
        entry = {"name": name, "shape": [int(d) for d in np.shape(values)], "dtype": plain}
        quant = enc.manifest_entry()
        if quant is not None:
            entry["quantization"] = quant
        entries.append(entry)
        parts.append(np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("<")).tobytes())
    blob = b"".join(parts)
    count = max(1, -(-len(blob) // shard_bytes))
    paths = []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = f"group1-shard{index + 1}of{count}.bin"
        (folder / name).write_bytes(blob[index * shard_bytes:(index + 1) * shard_bytes])
        paths.append(name)
    return [{"paths": paths, "weights": entries}]


def _plain_dtype(values) -> str:
    """TF.js dtype of an unquantized array: int32/bool arrays keep theirs, anything else float32."""
    kind = np.asarray(values).dtype
    return "int32" if kind.kind in "iu" else "bool" if kind.kind == "b" else "float32"


def check_shards(data: dict, folder: Path, where: str) -> list[str]:
    """Check each manifest group's shards hold exactly the bytes its weights need.

    Returns the weight names in manifest order; BadInput on a missing or outside shard, a
    size mismatch, an unknown dtype or a duplicate name.
    """
    present: list[str] = []
    for group in manifest_groups(data, where):
        expected = sum(weight_bytes(w, where) for w in group.get("weights") or [])
        actual = 0
        for shard in group.get("paths") or []:
            file = resolve_inside(folder, shard, where)
            if not file.is_file():
                raise BadInput(f"{where}: weight shard '{shard}' is missing")
            actual += file.stat().st_size
        if actual != expected:
            shards = ", ".join(group.get("paths") or [])
            raise BadInput(f"{where}: weight shards {shards} hold {actual} bytes but the "
                           f"manifest's weights need {expected}")
        present += [str(w.get("name")) for w in group.get("weights") or []]
    duplicates = sorted({n for n in present if present.count(n) > 1})
    if duplicates:
        raise BadInput(f"{where}: weight '{duplicates[0]}' is listed twice")
    return present


def validate_manifest(model_json: Path) -> None:
    """Check model.json's weightsManifest against its shard files and its topology.

    Every shard exists inside the model folder; each group's shards hold exactly the bytes
    its weights need; every weight a known layer needs is present and none is left over.
    Raises BadInput naming the first problem.
    """
    from srjs.convert.patch import check_topology_weights

    model_json = Path(model_json)
    data = read_model_json(model_json)
    present = check_shards(data, model_json.parent, str(model_json))
    check_topology_weights(data, present, str(model_json))
