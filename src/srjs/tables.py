"""One table renderer and one vocabulary for every number srjs prints.

Each measured quantity has one JSON field name (a `Field.key`, the dataclass attribute the
JSON is written from) and one column header, whichever command shows it: build, evaluate,
bench, verify, optimize --sweep and the report all say "fidelity dB" for `fidelity_psnr_y`,
"tile" for a patch's kept core. `render` draws rows as aligned text (the terminal) or as a
Markdown table (build.md, GITHUB_STEP_SUMMARY) from the same cells.

Light on purpose (no numpy, no TensorFlow): the CLI imports it before anything heavy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Field:
    """One quantity: JSON `key`, table `header`, decimals (None: integer or text), meaning."""

    key: str
    header: str
    digits: int | None
    about: str


FIELDS: dict[str, Field] = {f.key: f for f in (
    Field("name", "model", None, "model, variant or baseline name"),
    Field("variant", "variant", None, "build variant name (original: the converted source)"),
    Field("model", "model", None, "model name (timing rows)"),
    Field("scale", "x", None, "upscale factor"),
    Field("psnr_y", "Y-PSNR dB", 2, "mean PSNR of the luma channel against the HR image, dB"),
    Field("ssim_y", "SSIM-Y", 4, "mean SSIM of the luma channel against the HR image"),
    Field("psnr_rgb", "RGB-PSNR dB", 2, "mean PSNR over RGB against the HR image, dB"),
    Field("drop_db", "drop dB", 3, "Y-PSNR lost against the original (or parent), dB; negative: gained"),
    Field("parent_psnr_y", "parent Y-PSNR dB", 2, "the parent's Y-PSNR on the same images, dB"),
    Field("fidelity_psnr_y", "fidelity dB", 2,
          "Y-PSNR of the output against the original's (parent's) output, dB; inf: identical"),
    Field("fidelity_ssim_y", "fidelity SSIM-Y", 4, "SSIM of the output against the original's output"),
    Field("bytes", "bytes", None, "shipped TF.js layers files (model.json + shards), bytes"),
    Field("gzip_bytes", "gzip bytes", None, "the same files after gzip -6, bytes (what servers send)"),
    Field("graph_bytes", "graph bytes", None, "TF.js graph export, bytes"),
    Field("graph_gzip_bytes", "graph gzip bytes", None, "TF.js graph export after gzip -6, bytes"),
    Field("warm_ms", "warm ms", 1, "median warm latency, ms"),
    Field("cold_ms", "cold ms", 1, "first call, ms (load and compile included where it applies)"),
    Field("load_ms", "load ms", 1, "model load, ms"),
    Field("first_ms", "first ms", 1, "first run after load, ms"),
    Field("runtime", "runtime", None, "python, node, browser, upscalerjs"),
    Field("backend", "backend", None, "tf (Python), cpu, wasm, webgl, webgpu"),
    Field("format", "format", None, "keras, layers or graph"),
    Field("size", "size", None, "square input side, px"),
    Field("tile", "tile", None, "kept core of a patch, input px; 0 or 'whole': no tiling"),
    Field("pad", "pad", None, "context per patch side, input px"),
    Field("seam_free_padding", "pad", None, "measured seam-free padding, input px"),
    Field("tiles", "tiles", None, "model calls per image"),
    Field("tiles_per_s", "tiles/s", 1, "model calls per second, warm"),
    Field("overhead", "tiled/whole", 2, "tiled warm time / whole-image warm time"),
    Field("ideal_overhead", "ideal", 2, "((tile + 2*pad) / tile)^2"),
    Field("payback_png", "payback", None, "images (PNG) after which the gzip bytes are saved by sending LR"),
    Field("payback_jpeg", "payback JPEG", None, "the same for JPEG q90"),
    Field("max_abs_diff", "max|diff|", None, "largest |TF.js output - Python output|, model units"),
    Field("tol", "tol", None, "allowed max|diff|, model units"),
    Field("ok", "result", None, "check passed"),
    Field("verify_ok", "verify", None, "TF.js output matches Python"),
    Field("packaged", "packaged", None, "in the npm package"),
    Field("width", "width", None, "output width, px"),
    Field("height", "height", None, "output height, px"),
    Field("seconds", "seconds", 1, "wall time, s"),
    Field("warm_runs", "warm runs", None, "timed warm calls (the median is reported)"),
    Field("pixel_overhead", "pixel overhead", 2, "tile pixels computed / image pixels"),
    Field("seam_patch", "seam patch", None, "tile the seam-free padding was measured at, input px"),
    Field("files", "files", None, "files in the package"),
    Field("recipe", "recipe", None, "a variant's optimize recipe"),
)}


def header(key: str) -> str:
    """The column header of field `key` (the key itself when it is not in the vocabulary)."""
    return FIELDS[key].header if key in FIELDS else key


def cell(value: Any, key: str | None = None, digits: int | None = None) -> str:
    """How a table shows one value: '-' for None, inf/-inf/nan, the field's decimals, yes/no
    for booleans, and 0.0 (never -0.000)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if digits is None and key in FIELDS:
        digits = FIELDS[key].digits
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if digits is not None:
            text = f"{value:.{digits}f}"
            return text[1:] if text.startswith("-") and float(text) == 0 else text
    if isinstance(value, int) and digits is not None and key in FIELDS and FIELDS[key].digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def render(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, markdown: bool = False,
           headers: Mapping[str, str] | None = None, cells: Mapping[str, Any] | None = None) -> str:
    """Rows (dicts keyed by field) as an aligned text table, or a Markdown table.

    columns: the field keys shown, in order. headers: per-key header overrides. cells: per-key
    functions value -> text for columns that need more than `cell` (e.g. 'whole' for tile 0).
    Text columns are left-aligned, numbers right-aligned. Ends without a newline.
    """
    names = [(headers or {}).get(k, header(k)) for k in columns]
    body = []
    for row in rows:
        line = []
        for key in columns:
            value = row.get(key)
            custom = (cells or {}).get(key)
            line.append(custom(value) if custom else cell(value, key))
        body.append(line)
    if markdown:
        out = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in body]
        return "\n".join(out)
    widths = [max([len(n)] + [len(line[i]) for line in body]) for i, n in enumerate(names)]
    numeric = [all(_numeric(line[i]) for line in body) and bool(body) for i in range(len(names))]

    def fmt(cells_: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells_, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([fmt(names)] + [fmt(line) for line in body])


def _numeric(text: str) -> bool:
    if text in ("-", "inf", "-inf", "nan", "whole"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def key_line(columns: Sequence[str]) -> str:
    """One line saying what the less obvious columns mean, for under a terminal table."""
    explained = {
        "drop_db": "drop dB: Y-PSNR below the original's (negative: above)",
        "fidelity_psnr_y": "fidelity dB: output vs the original's output (inf: identical)",
        "payback_png": "payback: images until the model's download is saved by sending LR",
        "seam_free_padding": "pad: seam-free tile padding, px",
    }
    parts = [explained[k] for k in columns if k in explained]
    return ("key: " + "; ".join(parts) + "; '-': not measured") if parts else ""
