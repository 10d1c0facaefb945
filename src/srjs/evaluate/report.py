"""`srjs evaluate --report x.md|x.html`: tables, plots and crops people can look at.

Figures are matplotlib PNGs written to `<report stem>_files/` beside the report; the Markdown
links them relatively, the HTML embeds them as base64 (one self-contained file) and names
the file each came from in `data-file`. Every number in a table is formatted from the same
`Evaluation` the JSON is written from, with the digits in COLUMNS.
"""
from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from srjs import tables
from srjs.errors import BadInput
from srjs.evaluate.results import Evaluation, Row, fmt_number


@dataclass(frozen=True)
class Column:
    key: str  # Row attribute
    header: str
    digits: int | None  # None: integer or text


# Headers and decimals come from srjs.tables: the same words the CLI's tables use.
COLUMNS = tuple(Column(key, tables.header(key), tables.FIELDS[key].digits) for key in (
    "name", "scale", "bytes", "gzip_bytes", "psnr_y", "ssim_y", "psnr_rgb", "fidelity_psnr_y",
    "fidelity_ssim_y", "warm_ms", "seam_free_padding", "payback_png", "payback_jpeg", "recipe"))

# The quality axis spans at least this many dB: differences of a few hundredths of a dB are
# noise on a handful of images and must not fill the plot.
MIN_QUALITY_SPAN_DB = 1.0


# --- figures ---------------------------------------------------------------------------------

def _figure_png(draw: Callable, path: Path, size=(6.4, 4.2)) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Model and image names are data, not markup: '$...$' in a name is mathtext to matplotlib,
    # which fails to parse (or renders) it; every text is drawn as plain characters.
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig = plt.figure(figsize=size, dpi=100)
        try:
            draw(fig)
            fig.tight_layout()
            fig.savefig(path, format="png", metadata={"Software": None})
        finally:
            plt.close(fig)
    return path


def size_psnr_plot(evaluation: Evaluation, path: Path) -> Path:
    """Scatter of gzip MB vs mean PSNR-Y per model; bicubic baselines as dashed lines."""

    def draw(fig):
        ax = fig.add_subplot()
        colors = {}
        for row in evaluation.rows:
            color = colors.setdefault(row.scale, f"C{len(colors)}")
            if row.kind == "bicubic":
                ax.axhline(row.psnr_y, ls="--", color=color, lw=1, label=f"bicubic x{row.scale}")
            elif row.gzip_bytes is not None:
                ax.scatter(row.gzip_bytes / 1e6, row.psnr_y, color=color, zorder=3)
                ax.annotate(row.name, (row.gzip_bytes / 1e6, row.psnr_y), fontsize=8,
                            xytext=(4, 4), textcoords="offset points")
        for scale, color in colors.items():  # the size-quality (Pareto) front of each scale
            front = pareto_front([r for r in evaluation.rows if r.kind == "model" and r.scale == scale])
            if len(front) > 1:
                ax.step([r.gzip_bytes / 1e6 for r in front], [r.psnr_y for r in front], where="post",
                        color=color, lw=1, alpha=0.6, label=f"Pareto front x{scale}")
        ax.margins(x=0.2, y=0.1)  # room for the point labels
        ax.set_ylim(*quality_ylim([r.psnr_y for r in evaluation.rows]))
        ax.set_xlabel("shipped TF.js size, gzip (MB)")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.set_title(f"Size vs quality ({evaluation.dataset}, {len(evaluation.images)} images)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    return _figure_png(draw, path)


def quality_ylim(values: list[float], min_span: float = MIN_QUALITY_SPAN_DB) -> tuple[float, float]:
    """(low, high) of the PSNR axis in dB: the values with 10% margins, widened around their
    middle to at least `min_span` dB so that noise-sized differences look small."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    span = max(high - low, min_span)
    middle = (low + high) / 2
    return middle - 0.6 * span, middle + 0.6 * span


def has_tiled_latency(evaluation: Evaluation) -> bool:
    """Whether any tiled (tile > 0) warm latency was measured: the latency chart's x axis."""
    return any(t.tile and t.warm_ms is not None for t in evaluation.latency)


def pareto_front(rows: list[Row]) -> list[Row]:
    """Rows no other row beats on both gzip bytes (smaller) and PSNR-Y (higher), smallest first."""
    rows = sorted((r for r in rows if r.gzip_bytes is not None), key=lambda r: (r.gzip_bytes, -r.psnr_y))
    front: list[Row] = []
    for row in rows:
        if not front or row.psnr_y > front[-1].psnr_y:
            front.append(row)
    return front


def latency_plot(evaluation: Evaluation, path: Path) -> Path:
    """Warm Python latency vs patch size per model (whole image as a dashed line)."""

    def draw(fig):
        ax = fig.add_subplot()
        models = list(dict.fromkeys(t.model for t in evaluation.latency))
        for i, name in enumerate(models):
            timings = [t for t in evaluation.latency if t.model == name and t.warm_ms is not None]
            tiled = sorted((t.tile, t.warm_ms) for t in timings if t.tile)
            if tiled:
                ax.plot([p for p, _ in tiled], [ms for _, ms in tiled], "o-", color=f"C{i}", label=name)
            for t in timings:
                if t.tile == 0:
                    ax.axhline(t.warm_ms, ls="--", color=f"C{i}", lw=1, label=f"{name}, whole image")
        size = evaluation.options.get("latency_size")
        ax.set_xlabel("tile (input px; pad added on each side)")
        ax.set_ylabel("warm time per image (ms)")
        ax.set_title(f"Python latency, {size}x{size} input")
        ax.grid(alpha=0.3)
        if models:
            ax.legend(fontsize=8)

    return _figure_png(draw, path)


def _busiest_box(hr: np.ndarray, side: int) -> tuple[int, int, int]:
    """(top, left, side) of the side x side window with the most luma variance (coarse grid)."""
    h, w = hr.shape[:2]
    side = min(side, h, w)
    y = hr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    best, box = -1.0, (0, 0)
    step = max(1, side // 2)
    for top in range(0, h - side + 1, step):
        for left in range(0, w - side + 1, step):
            v = float(y[top:top + side, left:left + side].var())
            if v > best:
                best, box = v, (top, left)
    return box[0], box[1], side


def _most_different_box(a: np.ndarray, b: np.ndarray, side: int) -> tuple[int, int, int] | None:
    """(top, left, side) of the window where outputs a and b differ most (sum of |luma diff|);
    None where they are identical. A variant's crop shows where it departs from its parent,
    not a flat area where every variant looks the same."""
    h, w = a.shape[:2]
    side = min(side, h, w)
    luma = np.array([0.299, 0.587, 0.114])
    diff = np.abs(a.astype(np.float64) @ luma - b.astype(np.float64) @ luma)
    if not diff.any():
        return None
    total = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    sums = total[side:, side:] - total[:-side, side:] - total[side:, :-side] + total[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), side


def crops_png(evaluation: Evaluation, scale: int, path: Path, side: int = 96) -> Path | None:
    """One figure per scale: bicubic | every model | HR, cropped from the first image at the
    window where the HR has the most detail; None without samples. Each panel appears once."""
    sample = evaluation.samples.get(scale)
    if not sample or not sample["models"]:
        return None
    top, left, side = _busiest_box(sample["hr"], side)
    region = (slice(top, top + side), slice(left, left + side))
    panels = [(f"bicubic x{scale}", sample["bicubic"]), *sample["models"].items(), ("HR", sample["hr"])]
    return _panels_png(panels, region, f"{sample['image']}, {side}x{side} px at ({left}, {top})", path)


def _panels_png(panels: list, region: tuple, title: str, path: Path) -> Path:
    """One row of (title, image) panels, each cropped to `region`, under a figure title."""

    def draw(fig):
        for i, (name, image) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            ax.imshow(image[region], interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.axis("off")
        fig.suptitle(title, fontsize=9)

    return _figure_png(draw, path, size=(2.5 * len(panels), 3.0))


def variant_window(evaluation: Evaluation, scale: int, side: int = 96):
    """(reference name, its variant rows, (top, left, side), the variant departing most) for
    the first image of `scale`: the window where some variant differs most from its reference
    (not a flat area where every variant looks the same); None without variants or differences."""
    sample = evaluation.samples.get(scale)
    if not sample:
        return None
    models = sample["models"]
    variants = [r for r in evaluation.rows if r.kind == "model" and r.scale == scale and r.reference
                and r.reference != r.name and r.name in models and r.reference in models]
    if not variants:
        return None
    reference = variants[0].reference
    variants = [r for r in variants if r.reference == reference]
    luma = np.array([0.299, 0.587, 0.114])

    def departure(row, box):  # summed |luma difference| from the reference inside the box
        t, lft, sd = box
        a, b = (models[n][t:t + sd, lft:lft + sd].astype(np.float64) @ luma for n in (row.name, reference))
        return float(np.abs(a - b).sum())

    found = [(b, r) for r in variants
             if (b := _most_different_box(models[r.name], models[reference], side)) is not None]
    if not found:
        return None
    box, most = max(found, key=lambda f: departure(f[1], f[0]))
    return reference, variants, box, most


def variants_png(evaluation: Evaluation, scale: int, path: Path, side: int = 96) -> Path | None:
    """Reference | its variants, cropped at `variant_window`; None when there is nothing to show."""
    window = variant_window(evaluation, scale, side)
    if window is None:
        return None
    reference, variants, (top, left, side), most = window
    sample = evaluation.samples[scale]
    models = sample["models"]
    region = (slice(top, top + side), slice(left, left + side))
    panels = [(f"reference: {reference}", models[reference])] + [(r.name, models[r.name]) for r in variants]
    return _panels_png(panels, region, f"{sample['image']}, {side}x{side} px at ({left}, {top}): where "
                       f"{most.name} differs most from {reference}", path)


def write_figures(evaluation: Evaluation, folder: Path) -> dict[str, Path]:
    """Every figure as a PNG in `folder`: {'size_psnr', 'latency' (only when tiled latency was
    measured: whole-image timings alone are the table's), 'crops:x<scale>'} -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"size_psnr": size_psnr_plot(evaluation, folder / "size_psnr.png")}
    if has_tiled_latency(evaluation):
        figures["latency"] = latency_plot(evaluation, folder / "latency.png")
    for scale in sorted({r.scale for r in evaluation.rows if r.kind == "model"}):
        made = crops_png(evaluation, scale, folder / f"crops_x{scale}.png")
        if made is not None:
            figures[f"crops:x{scale}"] = made
        made = variants_png(evaluation, scale, folder / f"variants_x{scale}.png")
        if made is not None:
            figures[f"crops:variants x{scale}"] = made
    return figures


# --- tables ------------------------------------------------------------------------------------

def main_table(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of cells) of the results table."""
    headers = [c.header for c in COLUMNS]
    return headers, [[fmt_number(getattr(r, c.key), c.digits) for c in COLUMNS] for r in evaluation.rows]


def bandwidth_table(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    headers = ["image", "scale", "HR size", "LR size", "HR PNG", "LR PNG", "HR JPEG q90", "LR JPEG q90",
               "PNG saved", "JPEG saved"]
    rows = [[b.image, str(b.scale), "x".join(map(str, b.hr_size)), "x".join(map(str, b.lr_size)),
             str(b.hr_png), str(b.lr_png), str(b.hr_jpeg), str(b.lr_jpeg), str(b.png_saving),
             str(b.jpeg_saving)] for b in evaluation.bandwidth]
    return headers, rows


def per_image_table(row: Row) -> tuple[list[str], list[list[str]]]:
    headers = ["image", "PSNR-Y (dB)", "SSIM-Y", "PSNR-RGB (dB)", "fidelity PSNR-Y (dB)", "fidelity SSIM-Y"]
    return headers, [[s.image, fmt_number(s.psnr_y, 2), fmt_number(s.ssim_y, 4), fmt_number(s.psnr_rgb, 2),
                      fmt_number(s.fidelity_psnr_y, 2), fmt_number(s.fidelity_ssim_y, 4)] for s in row.images]


def latency_table(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    headers = [tables.header(k) for k in ("model", "size", "tile", "pad", "tiles", "cold_ms", "warm_ms",
                                           "tiles_per_s", "overhead", "ideal_overhead")]
    rows = [[t.model, str(t.size), str(t.tile or "whole"), str(t.pad), str(t.tiles), fmt_number(t.cold_ms, 1),
             fmt_number(t.warm_ms, 1), fmt_number(t.tiles_per_s, 1), fmt_number(t.overhead, 2), fmt_number(t.ideal_overhead, 2)]
            for t in evaluation.latency]
    return headers, rows


def _intro(evaluation: Evaluation) -> list[str]:
    m = evaluation.machine
    machine = (f"{m.get('processor')}, {m.get('cpus')} CPUs, {m.get('memory_gib', '?')} GiB, "
               f"{m.get('platform')}, TensorFlow {m.get('tensorflow')}")
    images = ", ".join(f"{i.name} {i.size[0]}x{i.size[1]}" for i in evaluation.images)
    opts = evaluation.options
    cropped = f" (centre crops of {opts['crop']} px)" if opts.get("crop") else ""
    return [
        f"srjs {evaluation.srjs_version}, {evaluation.created}; machine: {machine}.",
        f"Dataset {evaluation.dataset}: {images}{cropped}. LR: {opts.get('lr')}.",
        "Quality is measured on the weights the TF.js layers artifact ships, decoded as TF.js decodes "
        "them. Sizes are the shipped tfjs_layers files (model.json + shards). Fidelity: PSNR/SSIM of a "
        "model's output against its reference's (its parent, else the first model of its scale). "
        f"Warm latency: Python (TF) median of {opts.get('warm_runs')} whole-image calls on a "
        f"{opts.get('latency_size')}x{opts.get('latency_size')} input. Payback: images after which the "
        "model's gzip bytes are saved by sending LR instead of HR (mean saving per image).",
    ]


def _md_table(headers, rows) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(evaluation: Evaluation, figures: dict[str, Path], base: Path) -> str:
    """The report as Markdown; figures linked relative to `base` (the report's folder)."""
    def link(key, alt):
        return f"![{alt}]({figures[key].relative_to(base).as_posix()})"

    lines = ["# srjs evaluation", ""] + [p + "\n" for p in _intro(evaluation)]
    lines += ["## Results", ""] + _md_table(*main_table(evaluation)) + [""]
    lines += [link("size_psnr", "size vs PSNR-Y"), ""]
    if evaluation.latency:
        lines += ["## Latency", ""]
        lines += [link("latency", "latency vs tile size"), ""] if "latency" in figures else []
        lines += _md_table(*latency_table(evaluation)) + [""]
    lines += ["## Bandwidth", ""] + _md_table(*bandwidth_table(evaluation)) + [""]
    lines += ["## Crops", ""]
    for key in (k for k in figures if k.startswith("crops:")):
        lines += [link(key, f"crops {key[6:]}"), ""]
    lines += ["## Per image", ""]
    for row in evaluation.rows:
        lines += [f"### {row.name}", ""] + _md_table(*per_image_table(row)) + [""]
    lines += ["## Protocol", "", evaluation.protocol, ""]
    return "\n".join(lines)


def _inline_code(text: str) -> str:
    """HTML of text whose `backticked` words are code (escaped, no raw backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_table(headers, rows, table_id: str | None = None) -> str:
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_img(path: Path, base: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" data-file="{html.escape(path.relative_to(base).as_posix())}" '
            f'src="data:image/png;base64,{data}">')


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}img{max-width:100%}")


def html_page(evaluation: Evaluation, figures: dict[str, Path], base: Path) -> str:
    """The report as one self-contained HTML page (figures embedded as base64 PNG)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>srjs evaluation</title>"
             f"<style>{_STYLE}</style></head><body><h1>srjs evaluation</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in _intro(evaluation)]
    parts += ["<h2>Results</h2>", _html_table(*main_table(evaluation), table_id="results"),
              _html_img(figures["size_psnr"], base, "size vs PSNR-Y")]
    if evaluation.latency:
        parts.append("<h2>Latency</h2>")
        if "latency" in figures:
            parts.append(_html_img(figures["latency"], base, "latency vs tile size"))
        parts.append(_html_table(*latency_table(evaluation), table_id="latency"))
    parts += ["<h2>Bandwidth</h2>", _html_table(*bandwidth_table(evaluation), table_id="bandwidth"),
              "<h2>Crops</h2>"]
    for key in (k for k in figures if k.startswith("crops:")):
        parts.append(_html_img(figures[key], base, f"crops {key[6:]}"))
    parts.append("<h2>Per image</h2>")
    for row in evaluation.rows:
        parts += [f"<h3>{html.escape(row.name)}</h3>", _html_table(*per_image_table(row))]
    parts += ["<h2>Protocol</h2>", f"<p>{_inline_code(evaluation.protocol)}</p>", "</body></html>"]
    return "\n".join(parts)


def write_report(evaluation: Evaluation, path: Path) -> Path:
    """Write `path` (.md or .html) and its PNGs in `<stem>_files/` beside it; returns `path`."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".md", ".html", ".htm"):
        raise BadInput(f"report must end in .md or .html, not '{path.name}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    folder = base / f"{path.stem}_files"
    if folder.exists() and not (folder.is_dir() and all(p.suffix == ".png" and p.is_file() for p in folder.iterdir())):
        raise BadInput(f"'{folder}' exists and is not a report's figures folder; refusing to overwrite it")
    # Everything is made in a private folder beside the report, laid out as it will be (page and
    # <stem>_files/), and moved into place only once all of it was written: a report that fails
    # half-way (a plot, a full disk) leaves nothing behind, and an earlier report stays whole.
    work = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=base))
    try:
        figures = write_figures(evaluation, work / folder.name)
        text = markdown(evaluation, figures, work) if kind == ".md" else html_page(evaluation, figures, work)
        page = work / path.name
        page.write_text(text, encoding="utf-8")
        page.chmod(0o644)
        if folder.exists():
            folder.rename(work / ".old")
        (work / folder.name).rename(folder)
        os.replace(page, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path
