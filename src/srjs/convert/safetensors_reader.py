"""Read .safetensors weight files into numpy (a data-only format: nothing to execute)."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from srjs.errors import BadInput


def _bf16_arrays(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    # numpy has no bfloat16, so safetensors.numpy cannot return these; their raw bits are
    # read from the (already validated) header offsets and widened: bf16 is the top half of
    # a float32.
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        base = 8 + header_len
        out = {}
        for key in keys:
            begin, end = header[key]["data_offsets"]
            f.seek(base + begin)
            bits = np.frombuffer(f.read(end - begin), dtype="<u2")
            out[key] = (bits.astype(np.uint32) << 16).view(np.float32).reshape(
                header[key]["shape"]
            )
        return out


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file by name, as owned numpy arrays.

    float16 and bfloat16 become float32; other dtypes are kept. Raises BadInput for missing,
    empty, truncated or corrupt files.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadInput(f"cannot load '{path}': the file is empty")
        out: dict[str, np.ndarray] = {}
        bf16: list[str] = []
        with safe_open(str(path), framework="numpy") as f:
            order = list(f.keys())
            for key in order:
                if f.get_slice(key).get_dtype() == "BF16":
                    bf16.append(key)
                else:
                    out[key] = np.array(f.get_tensor(key))
        out.update(_bf16_arrays(path, bf16))
    except BadInput:
        raise
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, struct.error) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(f"cannot load '{path}' as safetensors: {detail}") from None
    return {
        k: out[k].astype(np.float32) if out[k].dtype == np.float16 else out[k] for k in order
    }
