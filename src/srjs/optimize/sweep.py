"""`srjs optimize --sweep`: several variants of one parent in one call, and their comparison.

OUT is a folder: one variant dir per recipe (`OUT/uint8`, `OUT/auto-d0.05`, ...), each made by
`run.make_variant` exactly as a single `srjs optimize` would make it, then `srjs evaluate` of the
parent and every variant (`OUT/eval.json`, `OUT/report.html`) and a comparison table.

Recipes come from `--recipe 'quantize=auto max_drop_db=0.02'` strings, from the [[variants]]
tables of a TOML file (a build config works: only its variants are read, gates are ignored), or
the default sweep (cheap, no fine-tune): float16, uint16, uint8 and auto. Every recipe is parsed
and checked, the parent read and the calibration images loaded before anything is written, so
an impossible request writes nothing. Each variant appears whole or not at all (atomic model
dirs); an interrupted sweep keeps the variants it finished, and a rerun into the same OUT
replaces them.
"""
from __future__ import annotations

import json
import re
import shutil
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

from srjs import atomic, modeldir, strict_json
from srjs.errors import BadInput
from srjs.optimize.run import Recipe

SCHEMA = "srjs.sweep/1"
SWEEP_FILE = "sweep.json"  # marks OUT as a sweep folder; a rerun may replace what it lists
EVAL_FILE = "eval.json"
REPORT_FILE = "report.html"
RESERVED = {SWEEP_FILE, EVAL_FILE, REPORT_FILE, "report_files"}
DEFAULT_MAX_DROP_DB = 0.05  # auto's budget in the default sweep without --max-drop-db/--min-fidelity-db
DEFAULT_SWEEP = ("float16", "uint16", "uint8", "auto")
FINE_TUNE_KEYS = ("prune", "prune_channels", "prune_depth", "cluster")  # recipes the sweep-wide --steps/--time-budget bound


@dataclass
class Planned:
    """One variant of the sweep: its folder name under OUT and its recipe."""

    name: str
    recipe: Recipe


@dataclass
class SweepRow:
    """One line of the comparison: sizes in bytes (TF.js layers files), quality in dB, latency in ms."""

    name: str
    path: str
    recipe: dict
    bytes: int | None
    gzip_bytes: int | None
    psnr_y: float
    drop_db: float | None  # Y-PSNR lost against the parent, on evaluate's images
    fidelity_psnr_y: float | None  # Y-PSNR of the output against the parent's output
    warm_ms: float | None
    pareto: bool = False  # on the size (gzip) - quality (Y-PSNR) front of the sweep


@dataclass
class SweepResult:
    out: Path
    parent: Path
    rows: list[SweepRow]  # the parent first, then the variants in sweep order
    evaluation: object = field(repr=False, default=None)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {"schema": SCHEMA, "parent": str(self.parent), "complete": True,
                "eval": EVAL_FILE, "report": REPORT_FILE, "rows": [asdict(r) for r in self.rows]}

    def table(self) -> str:
        """Aligned text: one line per model, '*' marks the size-quality (Pareto) front."""
        from dataclasses import asdict

        from srjs import tables

        parent_gzip = self.rows[0].gzip_bytes
        rows = []
        for r in self.rows:
            ratio = parent_gzip / r.gzip_bytes if parent_gzip and r.gzip_bytes else None
            recipe = " ".join(f"{k}={v}" for k, v in r.recipe.items() if k != "calib") or "(parent)"
            rows.append(asdict(r) | {"variant": r.name, "smaller": f"{ratio:.2f}x" if ratio else "-",
                                     "front": "*" if r.pareto else "", "recipe": recipe})
        columns = ("variant", "bytes", "gzip_bytes", "smaller", "psnr_y", "drop_db", "fidelity_psnr_y",
                   "warm_ms", "front", "recipe")
        return "\n".join([tables.render(rows, columns), tables.key_line(columns),
                          f"drop and fidelity against the parent on evaluate's images; smaller = parent gzip / "
                          f"gzip; report: {self.out / REPORT_FILE}"])


# --- recipes -----------------------------------------------------------------------------

def _str_keys() -> set[str]:
    """Recipe fields that hold text (their values are never read as numbers)."""
    return {f.name for f in fields(Recipe) if str(f.type).replace(" | None", "") == "str"}


def parse_recipe(text: str) -> dict:
    """'quantize=auto max_drop_db=0.02' -> {'quantize': 'auto', 'max_drop_db': 0.02}.

    Space-separated KEY=VALUE pairs, the format evaluate's recipe column prints. Values of text
    fields stay text; others are read as int, else float (Recipe.from_dict checks the types).
    """
    table: dict = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value:
            raise BadInput(f"--recipe '{text}': expected KEY=VALUE pairs, e.g. 'quantize=auto max_drop_db=0.02'")
        if key in table:
            raise BadInput(f"--recipe '{text}': '{key}' given twice")
        table[key] = value if key in _str_keys() else _number(value)
    if not table:
        raise BadInput("--recipe '': expected KEY=VALUE pairs, e.g. 'quantize=uint8'")
    return table


def _number(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value  # left as text: Recipe.from_dict names the key and the expected type


def read_recipes(path: Path) -> list[tuple[str | None, dict]]:
    """(name or None, recipe table) per [[variants]] table of a TOML file (other keys ignored)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise BadInput(f"--recipes '{path}' is not readable: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BadInput(f"--recipes {path}: not valid TOML: {err}") from None
    tables = data.get("variants")
    if not isinstance(tables, list) or not tables:
        raise BadInput(f"--recipes {path}: no [[variants]] tables")
    found = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise BadInput(f"--recipes {path}: 'variants[{i}]' must be a table")
        table = dict(table)
        table.pop("gates", None)  # a build config's gates belong to `srjs build`
        name = table.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise BadInput(f"--recipes {path}: 'variants[{i}].name' must be a string, not {name!r}")
        found.append((name, table))
    return found


def default_tables(max_drop_db: float | None, min_fidelity_db: float | None) -> list[dict]:
    """The default sweep: every whole-model dtype, and auto under the given budget (or 0.05 dB)."""
    tables: list[dict] = [{"quantize": dtype} for dtype in DEFAULT_SWEEP if dtype != "auto"]
    auto: dict = {"quantize": "auto"}
    if max_drop_db is None and min_fidelity_db is None:
        auto["max_drop_db"] = DEFAULT_MAX_DROP_DB
    tables.append(auto)
    return tables


def plan(tables: Sequence[tuple[str | None, dict]], *, calib: str = "builtin", max_drop_db: float | None = None,
         min_fidelity_db: float | None = None, steps: int | None = None,
         time_budget_s: float | None = None) -> list[Planned]:
    """Checked recipes with their folder names; BadInput before anything is loaded or written.

    The sweep-wide options fill in what a recipe leaves out: calib for every recipe, the auto
    budget for auto recipes, the fine-tune bounds for prune/cluster recipes.
    """
    planned: list[Planned] = []
    for i, (name, table) in enumerate(tables):
        where = f"recipe {i + 1} ({name or _describe(table)})"
        table = dict(table)
        table.setdefault("calib", calib)
        if table.get("quantize") == "auto":
            for key, value in (("max_drop_db", max_drop_db), ("min_fidelity_db", min_fidelity_db)):
                if value is not None:
                    table.setdefault(key, value)
        if any(key in table for key in FINE_TUNE_KEYS):
            for key, value in (("steps", steps), ("time_budget_s", time_budget_s)):
                if value is not None:
                    table.setdefault(key, value)
        recipe = Recipe.from_dict(table, where)
        if any(p.recipe == recipe for p in planned):
            raise BadInput(f"{where}: the same recipe is given twice")
        planned.append(Planned(name if name is not None else "", recipe))
    if not planned:
        raise BadInput("the sweep has no recipes")
    taken: set[str] = set()
    for p in planned:  # explicit names first, so a derived name never takes one of them
        if p.name:
            _check_name(p.name, taken)
            taken.add(p.name)
    for p in planned:
        if not p.name:
            base, n = folder_name(p.recipe), 2
            p.name = base
            while p.name in taken:
                p.name, n = f"{base}-{n}", n + 1
            taken.add(p.name)
    return planned


def _describe(table: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in table.items()) or "empty"


def _check_name(name: str, taken: set[str]) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", name) or name in RESERVED:
        raise BadInput(f"variant name '{name}' must be a plain folder name (letters, digits, . _ + -), "
                       f"not one of {', '.join(sorted(RESERVED))}")
    if name in taken:
        raise BadInput(f"variant name '{name}' is given twice")


def folder_name(recipe: Recipe) -> str:
    """The variant's folder: make_variant's short name ('uint8', 'p50-c16-uint8'), auto's budget added."""
    from srjs.optimize.run import _short

    name = _short(recipe) or "variant"
    if recipe.quantize == "auto":
        if recipe.max_drop_db is not None:
            name += f"-d{recipe.max_drop_db:g}"
        if recipe.min_fidelity_db is not None:
            name += f"-f{recipe.min_fidelity_db:g}"
    return name


# --- checks before writing ---------------------------------------------------------------

def check_out(out: Path) -> None:
    """OUT may be missing, empty, or an earlier sweep folder; anything else is BadInput."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"'{out}' exists and is not a folder; --sweep writes a folder of variants")
    if any(out.iterdir()) and not (out / SWEEP_FILE).is_file():
        raise BadInput(f"'{out}' exists and is not an srjs sweep folder (no {SWEEP_FILE}); refusing to write into it")


def preflight(parent: Path, out: Path, planned: Sequence[Planned]) -> modeldir.Manifest:
    """Everything make_variant would refuse, checked for every recipe before the first is made."""
    from srjs.optimize import calib as calibration

    manifest = modeldir.read_manifest(parent)
    for p in planned:
        if (Path(out) / p.name).resolve() == Path(parent).resolve():
            raise BadInput(f"variant '{p.name}' would overwrite its parent '{parent}'")
    check_out(out)
    for source in sorted({p.recipe.calib for p in planned}):
        calibration.calibration_sets(source, manifest.scale, manifest.value_max, manifest.channels)
    names = _weight_names(parent)
    if names:
        from srjs.optimize import quantize

        for p in planned:
            if p.recipe.quantize not in (None, "auto"):
                quantize.parse_spec(p.recipe.quantize, names)
    return manifest


def _weight_names(parent: Path) -> list[str]:
    """Learned weight names of the parent's TF.js layers export (what --quantize patterns match)."""
    from srjs.archs.srvgg import FIXED_PREFIX

    path = Path(parent) / modeldir.TFJS_LAYERS_DIR / "model.json"
    try:
        data = json.loads(path.read_text())
        names = [w["name"] for g in data["weightsManifest"] for w in g["weights"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no layers export: make_variant checks the patterns on the Keras model
    return [n for n in names if not n.startswith(FIXED_PREFIX)]


# --- the sweep ---------------------------------------------------------------------------

def run_sweep(parent: Path, out: Path, planned: Sequence[Planned], *, dataset: str = "builtin",
              limit: int | None = None, crop: int | None = None, progress: bool = False, echo=lambda line: None,
              **evaluate_options) -> SweepResult:
    """Make every planned variant under `out`, evaluate them with the parent, return the comparison.

    dataset/limit/crop and evaluate_options go to `srjs.evaluate.run.run_evaluate`. echo(line)
    reports each step (the CLI prints them).
    """
    from srjs.evaluate.run import run_evaluate
    from srjs.optimize.run import make_variant

    parent, out = Path(parent), Path(out)
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}")
    if crop is not None and crop < 16:
        raise BadInput(f"--crop must be at least 16 px, got {crop}")
    preflight(parent, out, planned)
    out.mkdir(parents=True, exist_ok=True)
    # an earlier sweep's evaluation no longer describes this one (its variant dirs are replaced below)
    for stale in (EVAL_FILE, REPORT_FILE):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / "report_files", ignore_errors=True)
    atomic.write_text(out / SWEEP_FILE, strict_json.dumps(
        {"schema": SCHEMA, "parent": str(parent), "complete": False,
         "variants": [{"name": p.name, "recipe": p.recipe.to_dict()} for p in planned]}, indent=2) + "\n")
    dirs = []
    for i, p in enumerate(planned, 1):
        echo(f"[sweep] {i}/{len(planned)} {p.name}: {_describe(p.recipe.to_dict())}")
        make_variant(parent, out / p.name, p.recipe, progress=progress)
        dirs.append(out / p.name)
    echo(f"[sweep] evaluate: {parent} and {len(dirs)} variant(s)")
    evaluation = run_evaluate([parent, *dirs], dataset=dataset, limit=limit, crop=crop,
                              json_path=out / EVAL_FILE, report_path=out / REPORT_FILE, progress=progress,
                              **evaluate_options)
    result = SweepResult(out, parent, _rows(evaluation, parent, planned, dirs), evaluation)
    from srjs.evaluate.results import write_json

    write_json(result.to_dict() | {"variants": [{"name": p.name, "recipe": p.recipe.to_dict()} for p in planned]},
               out / SWEEP_FILE)
    return result


def _rows(evaluation, parent: Path, planned: Sequence[Planned], dirs: Sequence[Path]) -> list[SweepRow]:
    from srjs.evaluate.report import pareto_front

    by_path = {Path(r.path).resolve(): r for r in evaluation.rows if r.kind == "model"}
    base = by_path[parent.resolve()]
    # ties with a front row (same bytes, same quality: auto that chose all-uint8) are on it too
    front = {(r.gzip_bytes, r.psnr_y) for r in pareto_front(list(by_path.values()))}
    rows = []
    for name, folder, recipe in [(parent.name, parent, {})] + [(p.name, d, p.recipe.to_dict())
                                                              for p, d in zip(planned, dirs)]:
        r = by_path[folder.resolve()]
        is_parent = folder is parent
        rows.append(SweepRow(
            name=name, path=str(folder), recipe=recipe, bytes=r.bytes, gzip_bytes=r.gzip_bytes, psnr_y=r.psnr_y,
            drop_db=None if is_parent else round(base.psnr_y - r.psnr_y, 4) + 0.0,
            fidelity_psnr_y=None if is_parent else r.fidelity_psnr_y, warm_ms=r.warm_ms,
            pareto=(r.gzip_bytes, r.psnr_y) in front))
    return rows
