"""The package README: what is inside, measured quality and size, usage, credits.

Numbers come from what was measured, never from here: each model dir's manifest `results`
(seam-free padding, and `quality` when a build recorded it) and, when given, an
`srjs evaluate --json` document whose rows are matched to model dirs by path, then by name.
A missing number is shown as "—", not guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from srjs.package.attribution import Source
from srjs.package.definitions import Definition, umd_global


@dataclass
class EntryFacts:
    definition: Definition
    model_name: str
    arch: str
    bytes: int  # model.json + shards as shipped
    gzip_bytes: int
    quality: dict = field(default_factory=dict)  # psnr_y, ssim_y, fidelity_psnr_y, warm_ms, dataset


_QUALITY_KEYS = ("psnr_y", "ssim_y", "fidelity_psnr_y", "warm_ms")


def check_report(report) -> None:
    """BadInput (exit 2) unless `report` has the shape of an `srjs evaluate --json` document in
    the fields read here: rows of {kind, name, path, quality numbers}, and the dataset name."""
    from srjs import schema as s
    from srjs.evaluate.results import EVALUATE_SCHEMA

    # to_json writes inf/nan as strings (identical outputs have infinite PSNR)
    measured = s.optional(s.any_of(s.number, s.equals("inf", "-inf", "nan"), expected="a number"))
    row = s.fields({"kind": s.string(max_len=64)},
                   {"name": s.optional(s.string(max_len=1000)), "path": s.optional(s.string(max_len=4096)),
                    **{k: measured for k in _QUALITY_KEYS}}, extra=s.json_value)
    spec = s.fields({"rows": s.list_of(row, max_len=10_000)},
                    {"schema": s.equals(EVALUATE_SCHEMA), "dataset": s.optional(s.string(max_len=4096))},
                    extra=s.json_value)
    s.check(report, spec, "report")


def quality_from(report: dict | None, model_dir: Path, name: str, results: dict) -> dict:
    """Quality numbers for one model dir: an evaluate row if `report` has one, else
    manifest.results['quality'] (a dict with the same keys), else {}."""
    keys = _QUALITY_KEYS
    rows = [r for r in (report or {}).get("rows", []) if r.get("kind") == "model"]
    here = Path(model_dir).resolve()
    row = next((r for r in rows if r.get("path") and Path(r["path"]).resolve() == here), None)
    row = row or next((r for r in rows if r.get("name") == name), None)
    if row:
        found = {k: row.get(k) for k in keys}
        found["dataset"] = (report or {}).get("dataset")
        return found
    stored = results.get("quality")
    return {k: stored.get(k) for k in (*keys, "dataset")} if isinstance(stored, dict) else {}


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(entries: list[EntryFacts]) -> str:
    head = ("| import | model | export | scale | bytes | gzip | PSNR-Y (dB) | SSIM-Y | fidelity (dB) "
            "| warm (ms) | seam-free padding | patchSize |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for e in entries:
        d, q = e.definition, e.quality
        lines.append(
            f"| `{d.package}/{d.entry}` | {e.model_name} ({e.arch}) | {d.kind} | x{d.scale} | {e.bytes:,} "
            f"| {e.gzip_bytes:,} | {_fmt(q.get('psnr_y'))} | {_fmt(q.get('ssim_y'), 4)} "
            f"| {_fmt(q.get('fidelity_psnr_y'))} | {_fmt(q.get('warm_ms'), 0)} "
            f"| {_fmt(d.meta.get('padding'))} | {_fmt(d.meta.get('patchSize'))} |")
    return "\n".join(lines)


def render(name: str, version: str, entries: list[EntryFacts], sources: list[Source]) -> str:
    first = entries[0].definition
    layers = next((e.definition for e in entries if e.definition.kind == "layers"), None)
    graph = next((e.definition for e in entries if e.definition.kind == "graph"), None)
    datasets = sorted({e.quality.get("dataset") for e in entries if e.quality.get("dataset")})
    out = [f"# {name}", "",
           f"Super-resolution model{'s' if len(entries) > 1 else ''} for the browser, packaged by srjs "
           "for [UpscalerJS](https://upscalerjs.com) 1.x and plain TensorFlow.js 4.x.", "",
           "## Contents", "", _table(entries), "",
           "bytes/gzip: model.json + weight shards as shipped (gzip -6, what a server sends). "
           "PSNR-Y/SSIM-Y: against the high-resolution images"
           + (f" of {', '.join(datasets)}" if datasets else "") + "; fidelity: against the reference "
           "model's output. Seam-free padding: the smallest UpscalerJS `padding` whose tiled output "
           "equals the whole-image output within one 8-bit level, measured by `srjs evaluate`; "
           "patchSize = tile + 2 × padding. — means not measured.", ""]
    entry = layers or first
    pad, patch = entry.meta.get("padding"), entry.meta.get("patchSize")
    options = (f"{{ patchSize: {patch}, padding: {pad} }}" if pad is not None and patch
               else "{ patchSize: 80, padding: 8 }  // padding not measured: run srjs evaluate")
    if layers:
        out += ["## With UpscalerJS", "", "```js",
                "import Upscaler from 'upscaler';",
                f"import model from '{name}/{layers.entry}';", "",
                "const upscaler = new Upscaler({ model });",
                f"const upscaled = await upscaler.upscale(image, {options});", "```", "",
                "From a `<script>` tag (after `tf.min.js` and UpscalerJS's UMD build):", "", "```html",
                f"<script src=\"node_modules/{name}/dist/umd/{layers.entry}.umd.js\"></script>",
                f"<script>const upscaler = new Upscaler({{ model: {umd_global(layers)} }});</script>",
                "```", "",
                "The definition's `path` points at the model next to the module that defines it, so a "
                "package served from your own origin needs no CDN. With a bundler that does not copy "
                "`models/`, copy it to your public folder and pass `{ ...model, path: '/models/"
                f"{layers.entry}/model.json' }}`.", ""]
    out += ["## With plain TensorFlow.js", "", "```js", "import * as tf from '@tensorflow/tfjs';"]
    if layers:
        out += [f"import model from '{name}/{layers.entry}';", "",
                "model.setup(tf);  // registers the custom layers (PixelShuffle, MultiplyBeta)",
                "const net = await tf.loadLayersModel(model.path);"]
    if graph:
        out += [("// or the graph export (no custom layers):" if layers else ""),
                f"import graph from '{name}/{graph.entry}';",
                ("// const net = " if layers else "const net = ") + "await tf.loadGraphModel(graph.path);"]
    lo, hi = entry.value_range
    scale_in = "" if hi == 255 else ".div(255)"
    scale_out = "" if hi == 255 else ".mul(255)"
    out += [f"// input: float32 [1, H, W, 3] in [{lo:g}, {hi:g}]; output [1, H*{entry.scale}, W*{entry.scale}, 3]",
            f"const x = tf.browser.fromPixels(img).toFloat(){scale_in}.expandDims(0);",
            f"const y = net.predict(x).clipByValue({lo:g}, {hi:g}){scale_out}.round().toInt().squeeze();",
            "await tf.browser.toPixels(y, canvas);", "```", "",
            "For large images, upscale tile by tile with the padding above (see `demo/demo.js`).", "",
            "## Demo", "",
            "`demo/index.html` upscales an image you pick, tile by tile, on webgl, wasm or cpu (webgpu "
            "where the browser has it). It needs "
            "HTTP with COOP/COEP headers for wasm threads: `srjs serve <this folder>` prints its URL. "
            "`demo/vendor/` holds TF.js and its wasm and webgpu backends (about 3.1 MB, 0.9 MB gzipped) so the page "
            "works offline from any static server; drop `demo/` from `files` in package.json to "
            "publish without it.", "",
            "## Files", "",
            "`srjs-package.json` lists the sha256 of every file; `models/<entry>/` holds model.json "
            "and its weight shards; `dist/` the ESM (`.mjs`), CommonJS (`.cjs`) and UMD definitions and "
            "their types.", "",
            "## License and attribution", "",
            "The weights are not srjs's. They come from:", ""]
    out += [f"- {s.credit()}" + (f" ({s.homepage})" if s.homepage else "") for s in dict.fromkeys(sources)]
    out += ["", "See `LICENSE`. srjs converted them to TensorFlow.js; the definition modules include "
            "srjs's custom-layer code (MIT).", ""]
    return "\n".join(out)
