"""What evaluate, bench and verify measure: result dataclasses and their one JSON codec.

Renderers (report.py, the CLI, build's gates) read these objects and never import the code
that measured them. JSON is strict: inf and nan become the strings "inf", "-inf", "nan" and
come back as floats (`from_json`).
"""
from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import srjs
from srjs import atomic, strict_json
from srjs.errors import BadInput

EVALUATE_SCHEMA = "srjs.evaluate/1"
BENCH_SCHEMA = "srjs.bench/1"


def fmt_number(value, digits: int | None = None) -> str:
    """How tables show a number: '-' for None, 'inf'/'-inf'/'nan', fixed digits when given."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}" if digits is not None else str(value)


def to_json(data) -> str:
    """Strict JSON text of dicts/lists/numbers (numpy scalars and non-finite floats handled)."""
    return strict_json.dumps(_strict(data), indent=1, sort_keys=False) + "\n"


def write_json(data, path: Path) -> None:
    """Write `to_json(data)` to `path` atomically."""
    atomic.write_text(Path(path), to_json(data))


def from_json(value):
    """Undo `to_json`'s encoding of non-finite floats in parsed JSON."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.generic):
        return _strict(value.item())
    return value


def machine_info() -> dict:
    """What a timing was measured on: CPU, cores, OS, Python and TF versions."""
    import os

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    from srjs.tf import tf

    info["tensorflow"] = tf.__version__
    return info


@dataclass
class Timing:
    """One model x runtime x backend x input size x tile size. Times in milliseconds."""

    model: str
    path: str
    runtime: str  # python | node | browser
    backend: str  # tf (Python) | cpu | wasm | webgl
    format: str  # keras | layers | graph
    size: int  # input side, pixels (square input)
    tile: int  # patch (tile core) side, input pixels; 0 = whole image
    pad: int  # context on each side of a patch, input pixels
    tiles: int  # model calls per image
    cold_ms: float | None
    warm_ms: float | None  # median of warm_runs
    warm_runs: int
    tiles_per_s: float | None  # model calls per second, warm
    overhead: float | None  # tiled warm_ms / whole-image warm_ms at the same size
    ideal_overhead: float | None  # ((tile + 2*pad) / tile)^2
    pixel_overhead: float | None  # tile pixels computed / image pixels, for this size
    method: str = "measured"  # measured | per-tile (tiles x one tile's time)
    error: str | None = None


@dataclass
class Bench:
    """A bench run: machine, date and every Timing. JSON schema `srjs.bench/1`."""

    timings: list[Timing]
    warm_runs: int
    machine: dict = field(default_factory=lambda: machine_info())
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    srjs_version: str = srjs.__version__
    schema: str = BENCH_SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Bench":
        if data.get("schema") != BENCH_SCHEMA:
            raise BadInput(f"not an {BENCH_SCHEMA} document (schema {data.get('schema')!r})")
        data = dict(data)
        data["timings"] = [Timing(**t) for t in data["timings"]]
        return cls(**data)

    def summary(self) -> str:
        """An aligned text table, one line per timing (srjs.tables' vocabulary)."""
        from srjs import tables

        columns = ("model", "runtime", "backend", "size", "tile", "pad", "tiles", "cold_ms", "warm_ms",
                   "tiles_per_s", "overhead", "ideal_overhead")
        rows = []
        for t in self.timings:
            row = asdict(t)
            if t.error:  # the error takes the place of the numbers
                row = {k: row[k] for k in ("model", "runtime", "backend", "size", "tile", "pad")}
                row["tiles"] = f"error: {t.error}"
            rows.append(row)
        return tables.render(rows, columns, cells={"tile": lambda v: "whole" if v == 0 else str(v)})


@dataclass
class ImageScore:
    """Scores of one row on one image. PSNR in dB (inf when identical), SSIM unitless."""

    image: str
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    fidelity_psnr_y: float | None = None
    fidelity_ssim_y: float | None = None


@dataclass
class Row:
    """One line of the table: the bicubic baseline of a scale, or a model dir.

    Scores are means over the images. bytes/gzip_bytes: the shipped TF.js layers files
    (model.json + shards); graph_*: the TF.js graph export. payback_png/payback_jpeg: images
    after which the gzip bytes are paid back by sending LR instead of HR (None: never).
    warm_ms: Python whole-image warm latency at the evaluation's latency size.
    """

    name: str
    kind: str  # bicubic | model
    scale: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    images: list[ImageScore]
    path: str | None = None
    arch: str | None = None
    value_range: list | None = None
    weights_from: str | None = None
    reference: str | None = None  # row name fidelity is measured against
    fidelity_psnr_y: float | None = None
    fidelity_ssim_y: float | None = None
    bytes: int | None = None
    gzip_bytes: int | None = None
    graph_bytes: int | None = None
    graph_gzip_bytes: int | None = None
    payback_png: int | None = None
    payback_jpeg: int | None = None
    seam_free_padding: int | None = None
    seam_patch: int | None = None
    warm_ms: float | None = None
    seconds: float | None = None  # wall time spent upscaling the dataset
    recipe: str | None = None  # a variant's optimize recipe ("prune=0.5 quantize=uint8"); None: not a variant


@dataclass
class Bandwidth:
    """Bytes to send one image: HR vs its LR at `scale`, as PNG (Pillow default level) and JPEG q90."""

    image: str
    scale: int
    hr_size: list  # [height, width] pixels
    lr_size: list
    hr_png: int
    lr_png: int
    hr_jpeg: int
    lr_jpeg: int

    @property
    def png_saving(self) -> int:
        return self.hr_png - self.lr_png

    @property
    def jpeg_saving(self) -> int:
        return self.hr_jpeg - self.lr_jpeg


@dataclass
class ImageInfo:
    name: str
    size: list  # [height, width] of the HR image evaluated (after --crop)
    note: str = ""


@dataclass
class Evaluation:
    """Everything `srjs evaluate` measured. `samples` (not serialised) holds, per scale, the
    first image's HR, bicubic and model outputs (uint8) for the report's crops."""

    dataset: str
    images: list[ImageInfo]
    rows: list[Row]
    bandwidth: list[Bandwidth]
    latency: list[Timing]
    options: dict
    protocol: str = ""
    machine: dict = field(default_factory=machine_info)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    srjs_version: str = srjs.__version__
    schema: str = EVALUATE_SCHEMA
    samples: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("samples")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Evaluation":
        """Inverse of `to_dict` after a JSON round trip ("inf" strings back to floats)."""
        if data.get("schema") != EVALUATE_SCHEMA:
            raise BadInput(f"not an {EVALUATE_SCHEMA} document (schema {data.get('schema')!r})")
        data = from_json(dict(data))
        rows = []
        for row in data["rows"]:
            row = dict(row)
            row["images"] = [ImageScore(**s) for s in row["images"]]
            rows.append(Row(**row))
        data["rows"] = rows
        data["images"] = [ImageInfo(**i) for i in data["images"]]
        data["bandwidth"] = [Bandwidth(**b) for b in data["bandwidth"]]
        data["latency"] = [Timing(**t) for t in data["latency"]]
        return cls(**data)

    SUMMARY_COLUMNS = ("name", "scale", "bytes", "gzip_bytes", "psnr_y", "ssim_y", "drop_db",
                       "fidelity_psnr_y", "warm_ms", "seam_free_padding", "payback_png")

    def summary_rows(self) -> list[dict]:
        """The rows the terminal table shows: each Row's fields plus drop_db against the first
        model of its scale (for the bicubic row too: how far below the model bicubic is)."""
        first = {}
        for r in self.rows:
            if r.kind == "model":
                first.setdefault(r.scale, r.psnr_y)
        out = []
        for r in self.rows:
            base = first.get(r.scale)
            drop = None if base is None else round(base - r.psnr_y, 3) + 0.0
            out.append(asdict(r) | {"drop_db": drop})
        return out

    def summary(self) -> str:
        """The main table as aligned text with a one-line key (what the CLI prints)."""
        from srjs import tables

        return "\n".join([
            tables.render(self.summary_rows(), self.SUMMARY_COLUMNS),
            tables.key_line(self.SUMMARY_COLUMNS),
            f"{len(self.images)} image(s) from {self.dataset}"])
