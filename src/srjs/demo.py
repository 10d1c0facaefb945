"""`make demo`: build the default config (UpscalerJS esrgan-slim x4 from npm) end to end.

Goes through `srjs build` like CI does: convert, float16 and uint8 variants, TF.js (Node)
verification, one evaluation report, gates, the npm package with its demo page. Prints the
summary table and where the package, demo page and report are. A second run skips every
finished step. Exit code: the build's (1 when a gate failed).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "esrgan-slim-x4.toml"


def main(config: Path = DEFAULT_CONFIG, out_root: Path = Path("artifacts")) -> int:
    from srjs.pipeline import build

    start = time.perf_counter()
    click.echo(f"[demo] srjs build {config} -o {out_root}")
    try:
        result = build(config, out_root)
    except click.ClickException as err:
        click.echo(f"[demo] build failed: {err.format_message()}", err=True)
        return err.exit_code
    click.echo("")
    click.echo(result.markdown())
    for failure in result.failures():
        click.echo(f"[demo] gate failed: {failure}", err=True)
    click.echo(f"[demo] built in {time.perf_counter() - start:.0f} s into {result.out.resolve()}")
    click.echo(f"[demo] report:    {Path(result.report['html']).resolve()}  (also .md, evaluate.json)")
    if result.package is not None:
        package = result.package.resolve()
        click.echo(f"[demo] package:   {package}  (npm pack / npm publish from there)")
        click.echo(f"[demo] demo page: {package / 'demo' / 'index.html'}")
        click.echo(f"[demo] serve it:  .venv/bin/srjs serve {package}   (then open the printed URL)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
