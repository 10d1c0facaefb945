"""Read PyTorch .pth/.pt checkpoints into numpy without importing torch or running their code.

A torch checkpoint is a pickle, and unpickling runs whatever callables the file names. This
reader unpickles with a whitelist: the few torch globals that tensors are rebuilt from are
replaced by local functions that only describe arrays, and any other global is refused with
`BadInput`. Both torch serialization formats are read:

- zip (torch >= 1.6 default): `<prefix>/data.pkl` plus one raw little- (or `byteorder`-named)
  endian storage per key in `<prefix>/data/<key>`;
- legacy (`_use_new_zipfile_serialization=False`): five pickles back to back (magic number,
  protocol version, sys info, the object, the sorted storage keys), then per storage an int64
  little-endian element count and the raw little-endian bytes.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import pickletools
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from srjs.errors import BadInput

# torch/serialization.py: MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage element types. bfloat16 has no numpy dtype: it is read as its raw uint16 bits.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",
}
# torch dtypes may appear as plain values (e.g. a saved config's dtype); they load as names.
_TORCH_DTYPES = (
    "float64", "double", "float32", "float", "float16", "half", "bfloat16", "int64", "long",
    "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128",
)

# A stride-0 (expanded) tensor may legitimately have more elements than its storage, but a
# crafted file could ask for an enormous one; past this many elements it must fit its storage.
_MAX_EXPANDED_ELEMENTS = 1 << 26


# Arrays a checkpoint may decode to, in all: a small file cannot claim gigabytes of output.
_BUDGET_PER_FILE_BYTE = 8
_BUDGET_FLOOR = 64 << 20


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


class _NoBuild:
    """Whitelisted stand-ins are shared by a whole load: a pickle's BUILD must not edit them."""

    def __setstate__(self, state):
        raise _Refused(f"the pickle tries to modify {type(self).__name__.lstrip('_')}")


@dataclass(frozen=True)
class _StorageType(_NoBuild):
    """Stands in for a torch storage class or dtype: only its element type matters."""

    dtype: str


@dataclass(frozen=True)
class _TorchDtype(_NoBuild):
    """Stands in for a torch.dtype value; resolves to its name, e.g. 'torch.float16'."""

    name: str


@dataclass(frozen=True)
class _TensorType(_NoBuild):
    """Stands in for torch.Tensor / torch.nn.Parameter when a pickle names them as types."""

    name: str


class _Storage:
    """One flat storage; `data` (raw bytes) arrives later in the legacy format."""

    def __init__(self, dtype: str, numel: int, data: bytes | None = None):
        self.dtype = dtype
        self.numel = numel
        self.data = data


@dataclass
class _LazyTensor:
    """A tensor described by the pickle, turned into an ndarray once storages are read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _Refused(Exception):
    """A structurally invalid checkpoint; turned into BadInput with the file name."""


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise _Refused(f"invalid tensor {what} {value!r}")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    # _rebuild_tensor_v2 adds requires_grad, backward_hooks and metadata: none change values.
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensor.__reduce_ex__ goes through here for tensors carrying Python attributes; the
    # attributes (state) are not weights, so only the rebuilt tensor is kept.
    if not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
        raise _Refused("unexpected tensor subclass rebuild")
    return func(*args)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _TensorType("Tensor"),
        ("torch.nn.parameter", "Parameter"): _TensorType("Parameter"),
    }
    for name, dtype in _STORAGE_DTYPES.items():
        # torch.cuda.* storage classes appear in checkpoints saved from a GPU by old torch.
        for module in ("torch", "torch.cuda"):
            allowed[(module, name)] = _StorageType(dtype)
    allowed[("torch.storage", "UntypedStorage")] = _StorageType("uint8")
    for name in _TORCH_DTYPES:
        allowed[("torch", name)] = _TorchDtype(name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only whitelisted globals, to local stand-ins."""

    def __init__(self, file, name: str, persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(file, encoding="utf-8")
        self._name = name
        self._persistent = persistent_load
        self._allowed = _allowed_globals()  # fresh per load: nothing carries over between files

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles (all torch checkpoints) name Python 2 modules, e.g. __builtin__;
        # map them as pickle itself would so that messages and the whitelist see one name.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._allowed.get((module, name))
        if found is None:
            raise BadInput(
                f"refusing to load '{self._name}': it asks to import "
                f"'{_printable(f'{module}.{name}')}'; checkpoints may only contain tensors"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise _Refused(f"unexpected persistent id {pid!r}")
        return self._persistent(pid)


# Protocol-5 out-of-band buffer opcodes: torch never writes them (it pickles with protocol 2
# by default) and CPython's unpickler mishandles some malformed uses of them.
_BANNED_OPCODES = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}


def _load_pickle(
    f: io.BytesIO, name: str, persistent_load: Callable[[Any], Any] | None = None
) -> Any:
    """Unpickle the next pickle in `f` after checking its opcodes, with the whitelist."""
    start = f.tell()
    try:
        for opcode, _arg, _pos in pickletools.genops(f):
            if opcode.name in _BANNED_OPCODES:
                raise _Refused(f"unexpected pickle opcode {opcode.name}")
    except ValueError as e:
        if "exhausted" in str(e) or "not enough data" in str(e):
            raise _Refused("the file ends early (truncated?)") from None
        raise
    f.seek(start)
    return _RestrictedUnpickler(f, name, persistent_load).load()


def _printable(text: str, limit: int = 120) -> str:
    """`text` escaped to one printable line, as file contents may hold any characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decode(value: Any) -> Any:
    return value.decode("ascii") if isinstance(value, bytes) else value


def _storage_dtype(storage_type: Any) -> str:
    if not isinstance(storage_type, _StorageType):
        raise _Refused(f"unknown storage type {storage_type!r}")
    return storage_type.dtype


def _member(archive: zipfile.ZipFile, member: str, limit: int) -> bytes:
    """A zip member's bytes; only stored (uncompressed) members no larger than the file.

    torch.save writes every member stored, so compression can only be a decompression bomb.
    """
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Refused(f"zip member '{_printable(member)}' is compressed (torch.save stores members)")
    if info.file_size > limit or info.compress_size > limit:
        raise _Refused(f"zip member '{_printable(member)}' claims {info.file_size} bytes in a "
                       f"{limit}-byte file")
    return archive.read(member)


def _read_zip(path: Path, name: str) -> Any:
    limit = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pickles:
            if any(n.endswith("constants.pkl") for n in names):
                raise _Refused("it is a TorchScript archive, not a saved state dict")
            raise _Refused("zip archive without data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = _member(archive, prefix + "byteorder", limit).decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise _Refused(f"unknown byte order {byteorder!r}")
        storages: dict[str, _Storage] = {}

        def persistent_load(pid: Any) -> _Storage:
            if not isinstance(pid, tuple) or len(pid) != 5 or _decode(pid[0]) != "storage":
                raise _Refused(f"unexpected persistent id {pid!r}")
            _, storage_type, key, _location, _numel = pid
            key = str(_decode(key))
            if key not in storages:
                dtype = _storage_dtype(storage_type)
                try:
                    data = _member(archive, f"{prefix}data/{key}", limit)
                except KeyError:
                    raise _Refused(f"storage data/{key} is missing") from None
                if byteorder == "big":
                    # Per element type: complex numbers swap each of their two halves.
                    element = "u2" if dtype == "bfloat16" else dtype
                    data = np.frombuffer(data, element).byteswap().tobytes()
                storages[key] = _Storage(dtype, len(data) // _itemsize(dtype), data)
            return storages[key]

        return _load_pickle(io.BytesIO(_member(archive, pickles[0], limit)), name, persistent_load)


def _read_legacy(path: Path, name: str) -> Any:
    # Read from memory: a corrupt length field then ends the pickle instead of making the
    # file reader allocate whatever size the field claims.
    with io.BytesIO(path.read_bytes()) as f:
        if _load_pickle(f, name) != _LEGACY_MAGIC:
            raise _Refused("not a PyTorch checkpoint (wrong magic number)")
        protocol = _load_pickle(f, name)
        if protocol != _LEGACY_PROTOCOL:
            raise _Refused(f"unsupported legacy protocol version {protocol!r}")
        _load_pickle(f, name)  # sys_info: files are little-endian regardless
        roots: dict[str, _Storage] = {}
        views: list[tuple[_Storage, str, int]] = []

        def persistent_load(pid: Any) -> Any:
            if not isinstance(pid, tuple) or not pid or _decode(pid[0]) != "storage":
                kind = _decode(pid[0]) if isinstance(pid, tuple) and pid else pid
                raise _Refused(f"unexpected persistent id {kind!r} (only storages are read)")
            if len(pid) != 6:
                raise _Refused(f"unexpected persistent id {pid!r}")
            _, storage_type, key, _location, numel, view = pid
            dtype, key = _storage_dtype(storage_type), str(_decode(key))
            (numel,) = _ints((numel,), "storage size")
            root = roots.setdefault(key, _Storage(dtype, numel))
            if view is None:
                return root
            _view_key, offset, view_numel = view
            (offset, view_numel) = _ints((offset, view_numel), "storage view")
            storage = _Storage(dtype, view_numel)
            views.append((storage, key, offset))
            return storage

        obj = _load_pickle(f, name, persistent_load)
        keys = _load_pickle(f, name)
        if not isinstance(keys, list):
            raise _Refused("storage key list is missing")
        for key in keys:
            storage = roots.get(str(_decode(key)))
            if storage is None:
                raise _Refused(f"storage {key!r} is listed but never used")
            header = f.read(8)
            if len(header) != 8:
                raise _Refused("file ends before its storages")
            (numel,) = struct.unpack("<q", header)
            nbytes = numel * _itemsize(storage.dtype)
            if numel < 0 or numel < storage.numel:
                raise _Refused(f"storage {key!r} has {numel} elements, expected {storage.numel}")
            storage.data = f.read(nbytes)
            if len(storage.data) != nbytes:
                raise _Refused("file ends inside a storage (truncated?)")
            storage.numel = numel
        for storage, key, offset in views:
            root = roots[key]
            size = _itemsize(root.dtype)
            if root.data is None or offset + storage.numel > root.numel:
                raise _Refused("storage view out of range")
            storage.data = root.data[offset * size : (offset + storage.numel) * size]
        return obj


def _to_array(t: _LazyTensor) -> np.ndarray:
    # Fields are checked here, not when the pickle builds them: a BUILD opcode can still
    # overwrite attributes of objects that the pickle itself created.
    storage = t.storage
    if not isinstance(storage, _Storage) or storage.dtype not in _STORAGE_DTYPES.values():
        raise _Refused("a tensor is not backed by a storage")
    if not isinstance(storage.data, bytes):
        raise _Refused("a tensor's storage was never written")
    (offset,) = _ints((t.offset,), "offset")
    size, stride = _ints(t.size, "size"), _ints(t.stride, "stride")
    if len(size) != len(stride):
        raise _Refused(f"tensor size {size} and stride {stride} differ in length")
    count = int(np.prod(size, dtype=np.int64)) if size else 1
    raw_dtype = "<u2" if storage.dtype == "bfloat16" else np.dtype(storage.dtype).newbyteorder("<")
    if count == 0:
        out = np.zeros(size, dtype=raw_dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        available = len(storage.data) // _itemsize(storage.dtype)
        if last >= available:
            raise _Refused(f"tensor of size {size} reaches past its storage (truncated?)")
        if count > available and count > _MAX_EXPANDED_ELEMENTS:
            raise _Refused(f"tensor of size {size} is implausibly large for its storage")
        flat = np.frombuffer(storage.data, dtype=raw_dtype, count=available)
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * itemsize for s in stride],
            writeable=False,
        )
        out = np.array(view, copy=True, order="C")
    if storage.dtype == "bfloat16":
        return (out.astype(np.uint32) << 16).view(np.float32)
    if storage.dtype == "float16":
        return out.astype(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


class _Resolver:
    """Turns the unpickled object into plain values, once per object.

    A pickle's memo lets one object be referenced many times; resolving each reference anew
    would let a few KB expand into thousands of array copies (or nested lists into
    exponentially many). Each object is resolved once and shared, and the decoded arrays
    together must stay within `budget` bytes.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.done: dict[int, Any] = {}
        self.keep: list[Any] = []  # keeps ids in `done` from being reused by new objects

    def __call__(self, obj: Any, depth: int = 0) -> Any:
        if depth > 200:
            raise _Refused("nesting too deep")
        if isinstance(obj, (_LazyTensor, collections.OrderedDict, dict, list, tuple)):
            key = id(obj)
            if key not in self.done:
                self.keep.append(obj)
                self.done[key] = self._resolve(obj, depth)
            return self.done[key]
        return self._resolve(obj, depth)

    def _resolve(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, _LazyTensor):
            array = _to_array(obj)
            self.budget -= array.nbytes
            if self.budget < 0:
                raise _Refused("its tensors decode to more bytes than such a file can hold")
            return array
        if isinstance(obj, collections.OrderedDict):
            return collections.OrderedDict((k, self(v, depth + 1)) for k, v in obj.items())
        if isinstance(obj, dict):
            return {k: self(v, depth + 1) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self(v, depth + 1) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self(v, depth + 1) for v in obj)
        if isinstance(obj, _TorchDtype):
            return f"torch.{obj.name}"
        if isinstance(obj, (_Storage, _StorageType, _TensorType)):
            raise _Refused("it holds bare storages or types, not tensors")
        return obj


# What malformed input can raise inside zipfile, pickle and struct: all mean "not readable".
_READ_ERRORS = (
    _Refused, pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile,
    zipfile.LargeZipFile, zlib.error, ValueError, TypeError, KeyError, IndexError,
    AttributeError, OverflowError, UnicodeDecodeError, RecursionError, MemoryError,
    NotImplementedError,
)


def read_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Load a torch.save'd file (zip or legacy format) with tensors as numpy arrays.

    Dicts, lists, tuples and plain Python values come back as they were; tensors and
    parameters become C-contiguous ndarrays with their values, shape and order (strided views
    are copied out). float16 and bfloat16 become float32; other dtypes are kept. Nothing in
    the file is executed: any global other than the tensor-rebuild whitelist raises BadInput,
    as do empty, truncated, corrupt and non-checkpoint files.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BadInput(f"cannot read '{name}': {e.strerror or e}") from None
    if size == 0:
        raise BadInput(f"cannot load '{name}': the file is empty")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if zipfile.is_zipfile(path):
            obj = _read_zip(path, name)
        elif head == b"PK\x03\x04":
            raise _Refused("a zip archive without its directory (truncated or corrupt?)")
        elif head[:1] == b"\x80":
            obj = _read_legacy(path, name)
        else:
            raise _Refused("not a PyTorch checkpoint (neither a zip archive nor a pickle)")
        return _Resolver(max(_BUDGET_FLOOR, _BUDGET_PER_FILE_BYTE * size))(obj)
    except BadInput:
        raise
    except OSError as e:
        raise BadInput(f"cannot read '{name}': {e.strerror or e}") from None
    except _READ_ERRORS as e:
        detail = _printable(str(e) or type(e).__name__)
        if isinstance(e, _Refused):
            pass
        elif isinstance(e, (EOFError, struct.error)) or "truncated" in detail:
            detail = f"the file ends early (truncated?): {detail}"
        else:
            detail = f"corrupt checkpoint: {detail}"
        raise BadInput(f"cannot load '{name}': {detail}") from None


# The wrappers training scripts put around the weights (spandrel's canonicalize.py list);
# BasicSR's EMA weights first, as the published ones.
_STATE_DICT_KEYS = ("params_ema", "params-ema", "params", "model_state_dict", "state_dict", "model", "net")


def _arrays(mapping: Mapping) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in mapping.items():
        if isinstance(key, str) and isinstance(value, np.ndarray):
            while key.startswith("module."):
                key = key[len("module."):]
            out[key] = value
    return out


def extract_state_dict(obj: Any) -> dict[str, np.ndarray]:
    """The weight dict inside a loaded checkpoint, keyed by parameter name.

    BasicSR training files hold `params_ema` (the EMA weights, preferred as the published
    ones) and/or `params`; other repos use `model_state_dict`, `state_dict`, `model` or `net`, or
    one key of any name around the dict; plain state dicts are used as they are. DataParallel's
    `module.` prefixes are stripped; non-array values are dropped.
    Raises BadInput if no tensors are found.
    """
    if isinstance(obj, Mapping):
        if len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
            obj = next(iter(obj.values()))  # {'anything': state_dict}
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                found = _arrays(inner)
                if found:
                    return found
        found = _arrays(obj)
        if found:
            return found
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise BadInput(f"no tensors found in the checkpoint (top-level keys: {keys})")
    raise BadInput(f"no tensors found in the checkpoint (it holds a {type(obj).__name__})")
