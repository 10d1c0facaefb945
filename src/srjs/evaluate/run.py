"""`srjs evaluate`: quality, size, bandwidth and latency of model dirs on a dataset.

Rows: one bicubic baseline per scale, then each model dir. Per image: the LR input is the HR
image's MATLAB-compatible bicubic downsampling, rounded to 8 bits as MATLAB's imresize on a
uint8 image does (or the given LR of an LR/HR pair); the model runs on it in its own value
range with the weights its TF.js artifact ships (`shipped.load_shipped`); its output is rounded
to 8 bits and scored against HR by `metrics` (Y-PSNR, Y-SSIM, RGB PSNR, `scale` px border
crop). Fidelity is the same Y-PSNR/SSIM of a model's output against its reference's: the
parent (manifest.parent) when that dir is evaluated too, else the first model of its scale.

Sizes are the shipped TF.js files from the manifest; bandwidth compares PNG and JPEG (q90)
bytes of LR and HR per image, and says after how many images a model's gzip bytes are paid
back by sending LR instead of HR. Each model's seam-free padding is measured on one image
(`tiling.seam_free_padding`) and its Python latency at a few tile sizes (`latency`).

The result is an `Evaluation` (JSON schema "srjs.evaluate/1").
"""
from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from srjs import image_channels, modeldir
from srjs.errors import BadInput, CheckFailed
from srjs.evaluate import datasets, latency, metrics, resize, results, tiling
from srjs.evaluate.results import Bandwidth, Evaluation, ImageInfo, ImageScore, Row

JPEG_QUALITY = 90
SEAM_PATCH = 32  # patch (input px) at which seam-free padding is measured
SEAM_SIDE = 4 * SEAM_PATCH  # LR side of the seam test image: several tiles per axis


# --- pieces with one job each -------------------------------------------------------------

def payback_images(model_bytes: int, savings: Sequence[int]) -> int | None:
    """Images after which `model_bytes` (one download) are paid back by per-image `savings`.

    savings: bytes saved per image by sending LR instead of HR; their mean is the typical
    saving. Returns the smallest n with n * mean >= model_bytes, or None if the mean saving
    is not positive (never pays back).
    """
    if not len(savings):
        return None
    mean = float(np.mean(savings))
    if mean <= 0:
        return None
    return max(1, math.ceil(model_bytes / mean - 1e-9))


def encoded_bytes(image: np.ndarray) -> tuple[int, int]:
    """(PNG bytes, JPEG q90 bytes) of an HxWx3 uint8 image, as Pillow writes them by default."""
    from PIL import Image

    sizes = []
    for fmt, options in (("PNG", {}), ("JPEG", {"quality": JPEG_QUALITY})):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, **options)
        sizes.append(buffer.tell())
    return sizes[0], sizes[1]


def tfjs_bytes(manifest: modeldir.Manifest, folder: str) -> tuple[int | None, int | None]:
    """(bytes, gzip bytes) of every file under `folder`/ in the manifest (None if none)."""
    entries = [e for p, e in manifest.files.items() if p.startswith(folder + "/")]
    if not entries:
        return None, None
    return sum(e["bytes"] for e in entries), sum(e["gzip_bytes"] for e in entries)


def score(sr: np.ndarray, hr: np.ndarray, scale: int, name: str) -> ImageScore:
    """Y-PSNR, Y-SSIM and RGB PSNR of uint8 `sr` against `hr` with a `scale` px border crop."""
    return ImageScore(name, metrics.psnr_y(sr, hr, scale), metrics.ssim_y(sr, hr, scale),
                      metrics.psnr_rgb(sr, hr, scale))


def center_crop(image: np.ndarray, side: int | None, multiple: int = 1) -> tuple[np.ndarray, int, int]:
    """Central side x side region (clipped to the image), corner aligned to `multiple`.

    Returns (crop, top, left) in pixels. side None returns the image unchanged.
    """
    h, w = image.shape[:2]
    if side is None:
        return image, 0, 0
    ch, cw = min(side, h), min(side, w)
    top = ((h - ch) // 2) // multiple * multiple
    left = ((w - cw) // 2) // multiple * multiple
    return np.ascontiguousarray(image[top:top + ch, left:left + cw]), top, left


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR uint8 from HR uint8: modcrop, MATLAB imresize(uint8, 1/scale)."""
    return resize.bicubic_downsample(hr, scale, uint8=True)


def load_dataset(dataset: str, limit: int | None = None) -> list[datasets.Image]:
    """'builtin', 'builtin-heldout' (the builtin photos no optimize step calibrates or
    fine-tunes on), a folder of HR images, or a folder with LR/ and HR/ subfolders (pairs)."""
    if dataset in datasets.BUILTIN_SETS:
        images = datasets.builtin()
        if dataset == datasets.HELDOUT:
            images = datasets.split_half(images)[1]
    else:
        root = Path(dataset)
        if not root.is_dir():
            raise BadInput(f"dataset '{dataset}' is neither 'builtin' nor a folder")
        subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
        if "lr" in subs and "hr" in subs:
            images = datasets.load_pairs(subs["lr"], subs["hr"])
        else:
            images = datasets.load_folder(root)
    if limit is not None:
        if limit < 1:
            raise BadInput(f"--limit must be >= 1, got {limit}")
        images = images[:limit]
    return images


def _pair_scale(image: datasets.Image) -> int | None:
    return None if image.lr is None else image.hr.shape[0] // image.lr.shape[0]


def _inputs(image: datasets.Image, scale: int, crop: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(HR, LR) uint8 at `scale`, centre-cropped to `crop` HR px if given."""
    if image.lr is None:
        hr, _, _ = center_crop(image.hr, crop)
        hr = resize.modcrop(hr, scale)
        return hr, make_lr(hr, scale)
    pair = _pair_scale(image)
    if pair != scale:
        raise BadInput(f"'{image.name}' is an x{pair} LR/HR pair; a x{scale} model cannot be scored on it")
    hr, top, left = center_crop(resize.modcrop(image.hr, scale), crop, multiple=scale)
    lr = image.lr[top // scale:(top + hr.shape[0]) // scale, left // scale:(left + hr.shape[1]) // scale]
    return hr, np.ascontiguousarray(lr)


def _unique(name: str, taken: set) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    taken.add(candidate)
    return candidate


def _reference(index: int, dirs: list[Path], manifests: list, names: list[str]) -> int:
    """Index of the model a model is compared with: its parent if evaluated, else the first of its scale."""
    parent = manifests[index].parent
    if parent:
        for base in (Path(parent), dirs[index].parent / parent):
            for j, d in enumerate(dirs):
                if j != index and base.exists() and d.resolve() == base.resolve():
                    if manifests[j].scale == manifests[index].scale:
                        return j
    return next(j for j, m in enumerate(manifests) if m.scale == manifests[index].scale)


def _mean(values: list[float]) -> float:
    # A row whose every image is identical to its reference has mean inf; one finite image
    # among infinite ones still averages to inf, which is what "identical somewhere" means.
    return float(np.mean(values)) if values else float("nan")


# --- the orchestration --------------------------------------------------------------------

def evaluate(model_dirs: Sequence[Path], *, dataset: str = "builtin", limit: int | None = None,
             crop: int | None = None, latency_size: int = 128, latency_tiles: Sequence[int] = (0, 32, 64),
             warm: int = 3, seam: bool = True, record: bool = False, progress: bool = True) -> Evaluation:
    """Evaluate model dirs on a dataset; see the module docstring.

    limit: use only the first N images. crop: centre-crop each HR image to crop x crop pixels
    (quick runs). latency_size/latency_tiles: Python latency input side and patch sizes (input
    pixels, 0 = whole image), timed `warm` times after a cold call, with the measured
    seam-free padding. seam: measure the seam-free padding (else pads use the manifest's or 8).
    record: write the measured padding into each model dir's manifest (`upscale --tile` then
    defaults to it); off by default, so evaluating never changes its inputs unasked.
    """
    from tqdm import tqdm

    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime.python import keras_runner

    dirs = [Path(d) for d in model_dirs]
    if crop is not None and crop < 16:
        raise BadInput(f"--crop must be at least 16 px, got {crop}")
    manifests = [modeldir.read_manifest(d) for d in dirs]
    images = load_dataset(dataset, limit)
    scales = sorted({m.scale for m in manifests} or {2})
    taken: set = set()
    info = []
    for image in images:
        hr = center_crop(image.hr, crop)[0] if image.lr is None else _inputs(image, _pair_scale(image), crop)[0]
        info.append(ImageInfo(image.name, list(hr.shape[:2]), image.note))

    rows: list[Row] = []
    bandwidth: list[Bandwidth] = []
    samples: dict = {}
    outputs: dict[str, list[np.ndarray]] = {}
    hrs: dict[int, list[np.ndarray]] = {}

    # Bicubic baseline and bandwidth, per scale.
    for scale in scales:
        scores, hrs[scale] = [], []
        for image in tqdm(images, desc=f"bicubic x{scale}", leave=False, disable=None if progress else True):
            hr, lr = _inputs(image, scale, crop)
            sr = metrics.to_uint8(resize.bicubic_upsample(lr, scale))
            scores.append(score(sr, hr, scale, image.name))
            hrs[scale].append(hr)
            png_hr, jpg_hr = encoded_bytes(hr)
            png_lr, jpg_lr = encoded_bytes(lr)
            bandwidth.append(Bandwidth(image.name, scale, list(hr.shape[:2]), list(lr.shape[:2]),
                                       png_hr, png_lr, jpg_hr, jpg_lr))
            if not samples.get(scale):
                samples[scale] = {"image": image.name, "hr": hr, "bicubic": sr, "models": {}}
        rows.append(Row(name=_unique(f"bicubic x{scale}", taken), kind="bicubic", scale=scale,
                        psnr_y=_mean([s.psnr_y for s in scores]), ssim_y=_mean([s.ssim_y for s in scores]),
                        psnr_rgb=_mean([s.psnr_rgb for s in scores]), images=scores))

    # Models: shipped weights, whole-image upscaling, scores; then seam-free pad and latency.
    names = [_unique(m.name, taken) for m in manifests]
    timings: list[latency.Timing] = []
    model_rows = []
    for d, manifest, name in zip(dirs, manifests, names):
        model = load_shipped(d)
        scale, vmax = manifest.scale, manifest.value_max
        # grayscale models score their luminance as a gray image, RGBA ones run on opaque photos
        run = image_channels.rgb_runner(keras_runner(model), manifest.channels, vmax)
        scores, outs = [], []
        start = time.perf_counter()
        bars = None if progress else True  # None: shown only on a terminal
        for image, hr in tqdm(list(zip(images, hrs[scale])), desc=name, leave=False, disable=bars):
            _, lr = _inputs(image, scale, crop)
            out = run((lr.astype(np.float32) * np.float32(vmax / 255.0))[None])[0]
            sr = metrics.to_uint8(out.astype(np.float64) * (255.0 / vmax))
            if sr.shape != hr.shape:
                raise CheckFailed(f"{name}: output {sr.shape} for LR {lr.shape}; expected {hr.shape} (x{scale})")
            scores.append(score(sr, hr, scale, image.name))
            outs.append(sr)
        seconds = time.perf_counter() - start
        outputs[name] = outs
        samples[scale]["models"][name] = outs[0]
        pad, patch = None, None
        if seam:
            pad, patch = measure_seam_free_padding(run, images[0], scale, vmax)
            if pad is not None and record:  # `srjs upscale --tile` defaults to it from now on
                modeldir.record_results(d, seam_free_padding=pad, seam_patch=patch,
                                        seam_free_padding_from="measured")
        layers_bytes, layers_gzip = tfjs_bytes(manifest, modeldir.TFJS_LAYERS_DIR)
        graph_bytes, graph_gzip = tfjs_bytes(manifest, modeldir.TFJS_GRAPH_DIR)
        lat_pad = pad if pad is not None else int(manifest.results.get("seam_free_padding", latency.DEFAULT_PAD))
        model_timings = latency.bench_python(d, [latency_size], latency_tiles, lat_pad, warm, model=model)
        for t in model_timings:
            t.model = name
        timings += model_timings
        whole = next((t.warm_ms for t in model_timings if t.tile == 0), None)
        sizes = [b for b in bandwidth if b.scale == scale]
        row = Row(
            name=name, kind="model", scale=scale, path=str(d), arch=manifest.arch,
            value_range=list(manifest.value_range), weights_from=f"{modeldir.TFJS_LAYERS_DIR}/model.json",
            psnr_y=_mean([s.psnr_y for s in scores]), ssim_y=_mean([s.ssim_y for s in scores]),
            psnr_rgb=_mean([s.psnr_rgb for s in scores]), images=scores,
            bytes=layers_bytes, gzip_bytes=layers_gzip, graph_bytes=graph_bytes, graph_gzip_bytes=graph_gzip,
            payback_png=payback_images(layers_gzip, [b.png_saving for b in sizes]) if layers_gzip else None,
            payback_jpeg=payback_images(layers_gzip, [b.jpeg_saving for b in sizes]) if layers_gzip else None,
            seam_free_padding=pad, seam_patch=patch, warm_ms=whole, seconds=seconds,
            recipe=" ".join(f"{k}={v}" for k, v in manifest.recipe.items() if k != "calib") or None)
        rows.append(row)
        model_rows.append(row)
        del model, run

    # Fidelity against the reference model's 8-bit output, image by image.
    for i, row in enumerate(model_rows):
        ref = model_rows[_reference(i, dirs, manifests, names)]
        row.reference = ref.name
        for s, mine, theirs in zip(row.images, outputs[row.name], outputs[ref.name]):
            s.fidelity_psnr_y = metrics.psnr_y(mine, theirs, row.scale)
            s.fidelity_ssim_y = metrics.ssim_y(mine, theirs, row.scale)
        row.fidelity_psnr_y = _mean([s.fidelity_psnr_y for s in row.images])
        row.fidelity_ssim_y = _mean([s.fidelity_ssim_y for s in row.images])

    options = {"limit": limit, "crop": crop, "latency_size": latency_size, "latency_tiles": list(latency_tiles),
               "warm_runs": warm, "jpeg_quality": JPEG_QUALITY, "seam_patch": SEAM_PATCH if seam else None,
               "lr": "given LR/HR pairs" if images and images[0].lr is not None
               else "MATLAB imresize(uint8 HR, 1/scale), bicubic, antialiased"}
    return Evaluation(dataset=dataset, images=info, rows=rows, bandwidth=bandwidth, latency=timings,
                      options=options, samples=samples, protocol=metrics.PROTOCOL)


def measure_seam_free_padding(run, image: datasets.Image, scale: int, value_max: float,
                              patch: int = SEAM_PATCH) -> tuple[int | None, int]:
    """(smallest seam-free pad, patch) on the centre SEAM_SIDE px of `image`'s LR (uncropped).

    The tiled output must equal the whole-image output within one 8-bit level. None if no pad
    up to patch // 2 is seam-free.
    """
    lr = image.lr if image.lr is not None else make_lr(image.hr, scale)
    lr, _, _ = center_crop(lr, SEAM_SIDE)
    if min(lr.shape[:2]) <= patch:
        patch = max(4, min(lr.shape[:2]) // 3)  # small images: still more than one tile per axis
    x = lr.astype(np.float32) * np.float32(value_max / 255.0)
    try:
        return tiling.seam_free_padding(run, x, scale, patch, value_max=value_max), patch
    except CheckFailed:
        return None, patch


def run_evaluate(model_dirs: Sequence[Path], *, dataset: str = "builtin", limit: int | None = None,
                 crop: int | None = None, json_path: Path | None = None, report_path: Path | None = None,
                 **options) -> Evaluation:
    """`srjs evaluate`: evaluate, then write the JSON and/or the report (.md or .html)."""
    if not model_dirs:
        raise BadInput("give at least one model dir")
    if report_path is not None and Path(report_path).suffix.lower() not in (".md", ".html", ".htm"):
        raise BadInput(f"--report must end in .md or .html, not '{report_path}'")
    evaluation = evaluate(model_dirs, dataset=dataset, limit=limit, crop=crop, **options)
    if report_path is not None:  # first: of the two it is the one that can fail (plots, names)
        from srjs.evaluate.report import write_report

        write_report(evaluation, report_path)
    if json_path is not None:
        results.write_json(evaluation.to_dict(), json_path)
    return evaluation
