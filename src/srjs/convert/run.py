"""`srjs convert`: any supported checkpoint -> a model dir."""
from __future__ import annotations

from pathlib import Path

from srjs import modeldir
from srjs.convert import npm
from srjs.convert.detect import AUTO, build_model
from srjs.convert.sources import read_checkpoint
from srjs.convert.write import write_model_dir
from srjs.errors import BadInput
from srjs.modeldir import Manifest

VALUE_RANGES = {"0-1": [0, 1], "0-255": [0, 255]}


def convert_checkpoint(source: str, out: Path, *, arch: str = AUTO, scale: int | None = None,
                       name: str | None = None, value_range: str | None = None,
                       export_tfjs: bool = True) -> Manifest:
    """Convert `source` (a path or npm:<pkg>@<ver>/<path>) into the model dir `out`.

    value_range: '0-1' or '0-255' overrides what the source says; by default an npm
    package's own model definition decides, else the architecture family's convention.
    """
    hints: dict = {}
    if npm.is_npm_spec(source):
        spec = npm.parse_spec(source)
        path = npm.resolve(source)
        hints = npm.package_hints(spec)
    else:
        path = Path(source)
    if value_range is not None and value_range not in VALUE_RANGES:
        raise BadInput(f"--value-range must be one of {', '.join(VALUE_RANGES)}, not '{value_range}'")

    checkpoint = read_checkpoint(path)
    built = build_model(checkpoint, arch=arch, scale=scale)
    expected_scale = hints.get("scale_hint")
    if scale is None and expected_scale and expected_scale != built.scale:
        raise BadInput(f"'{source}' is named x{expected_scale} but its weights upscale x{built.scale}")

    chosen_range = (VALUE_RANGES[value_range] if value_range else
                    checkpoint.hints.get("value_range") or hints.get("value_range")
                    or list(built.default_value_range))
    manifest = Manifest(
        name=name or hints.get("name") or _default_name(path),
        arch=built.arch,
        arch_params=built.params,
        scale=built.scale,
        value_range=list(chosen_range),
        source={
            "path": str(source),
            "format": checkpoint.format,
            "sha256": modeldir.sha256_file(path) if path.is_file() else None,
        },
    )
    return write_model_dir(built.model, Path(out), manifest, export_tfjs=export_tfjs)


def _default_name(path: Path) -> str:
    stem = path.parent.name if path.name == "model.json" else path.stem
    return stem.replace(" ", "-") or "model"
