"""Hostile inputs, round 2 (issue 15): each ends in exit 2 with one line and nothing written.

Model dirs (symlinked shards, wrong-typed manifests, parent loops), `package --report`,
build configs (unsafe names, non-finite numbers, empty lists), non-finite CLI budgets,
mathtext model names in reports, and JSON written strictly everywhere.
"""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from srjs import strict_json
from tests.conftest import run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "srjs"


class _Exit:
    def __init__(self, exit_code: int, output: str):
        self.exit_code, self.output = exit_code, output


def srjs_main(capsys, monkeypatch, *args) -> _Exit:
    """Run the console script's `main` in-process: the user's exit code and stderr, usage errors too."""
    from srjs.cli import main

    monkeypatch.setattr("sys.argv", ["srjs", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return _Exit(done.value.code, captured.err)


def _one_line_exit_2(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line, result.output
    for needle in needles:
        assert needle in line, line
    return line


# --- JSON is written strictly -------------------------------------------------------------

def test_strict_json_refuses_non_finite_numbers():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            strict_json.dumps({"max_drop_db": bad})
    assert json.loads(strict_json.dumps({"a": [1.5, None]}, indent=2)) == {"a": [1.5, None]}


def test_every_json_dump_in_srjs_goes_through_strict_json():
    """Python's json writes bare NaN/Infinity, which JSON.parse rejects; only strict_json may call it.
    Exempt: hand-offs between Pythons that no other reader sees (lambda_code's pipe to its child,
    gate's config text for Keras's model_from_json)."""
    exempt = {"strict_json.py", "convert/lambda_code.py", "convert/gate.py"}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() in exempt:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("dump", "dumps") and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "json"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("args, option", [
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "auto", "--max-drop-db", "nan"], "--max-drop-db"),
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "auto", "--min-fidelity-db", "inf"], "--min-fidelity-db"),
    (["optimize", "MODEL", "-o", "OUT", "--prune", "0.5", "--time-budget", "inf"], "--time-budget"),
    (["optimize", "MODEL", "-o", "OUT", "--sweep", "--max-drop-db", "nan"], "--max-drop-db"),
    (["convert", "MODEL", "-o", "OUT", "--shard-mb", "nan"], "--shard-mb"),
    (["verify", "MODEL", "--tol", "nan"], "--tol"),
])
def test_non_finite_cli_numbers_exit_2(tmp_path, capsys, monkeypatch, args, option):
    args = [str(tmp_path / a) if a in ("MODEL", "OUT") else a for a in args]
    _one_line_exit_2(srjs_main(capsys, monkeypatch, *args), option, "finite")
    assert not (tmp_path / "OUT").exists()


def test_non_finite_recipe_numbers_are_refused_by_the_library():
    """The same check holds for callers that skip the CLI (build configs, sweeps, the API)."""
    from srjs.errors import BadInput
    from srjs.optimize.run import Recipe

    for table in ({"quantize": "auto", "max_drop_db": math.nan}, {"quantize": "auto", "min_fidelity_db": -math.inf},
                  {"prune": 0.5, "time_budget_s": math.inf}):
        with pytest.raises(BadInput, match="finite"):
            Recipe.from_dict(table, "test")
