"""`make demo`: build the default config (UpscalerJS esrgan-slim x4 from npm) end to end.

Goes through `srjs build` like CI does: convert, float16 and uint8 variants, TF.js (Node)
verification, one evaluation report on the 7 built-in photos, gates, the npm package with its
demo page. Prints the summary table (with the bicubic baseline and a key), where the package,
demo page and report are, and a tour of every command on the models it just built, runnable
as printed (`next_steps`; the README shows the same lines). A second run skips every finished
step. Exit code: the build's (1 when a gate failed).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "esrgan-slim-x4.toml"
SAMPLE = "sample.png"  # a built-in photo's crop the tour upscales, written beside the build


def next_steps(build: Path, srjs: str = "srjs") -> list[str]:
    """The tour, as shell lines, for the build folder `build` (e.g. artifacts/esrgan-slim-x4).

    Every line runs as printed (in a POSIX shell, from the folder the demo ran in) once the
    build exists and `srjs` is on the PATH; `srjs serve` (last) runs until Ctrl-C.
    """
    return [
        f"A={build.as_posix()}",
        f"{srjs} upscale $A/models/uint8 $A/{SAMPLE} -o $A/sample-x4.png --tile 32",
        f"{srjs} verify $A/models/uint8 --runtime node --json $A/verify-uint8.json",
        f"{srjs} optimize $A/models/original -o $A/models/uint16 --quantize uint16 --force",
        f"{srjs} evaluate $A/models/original $A/models/uint16 --limit 3 --report $A/uint16.html --json $A/uint16.json",
        f"{srjs} bench $A/models/original $A/models/uint8 --size 64 --tile 0,32 --warm 2",
        f"{srjs} package $A/models/original $A/models/uint8 -o $A/my-package --name @me/esrgan-slim "
        "--evaluation $A/report/evaluate.json",
        f"{srjs} serve $A/my-package",
    ]


def write_sample(build: Path) -> Path:
    """A 64x64 crop of scikit-image's astronaut (detail: the flag and the suit) for the tour."""
    from PIL import Image
    from skimage import data

    from srjs import atomic

    path = build / SAMPLE
    with atomic.atomic_file(path) as tmp:
        Image.fromarray(data.astronaut()[120:184, 200:264]).save(tmp, format="PNG")
    return path


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is under it (shorter, and what a
    user typing the tour's commands from the repo root needs)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def main(config: Path = DEFAULT_CONFIG, out_root: Path = Path("artifacts")) -> int:
    from srjs.pipeline import build

    start = time.perf_counter()
    click.echo(f"[demo] srjs build {_shown(config)} -o {_shown(out_root)}")
    try:
        result = build(config, out_root)
    except click.ClickException as err:
        click.echo(f"[demo] build failed: {err.format_message()}", err=True)
        return err.exit_code
    write_sample(result.out)
    click.echo("")
    click.echo(result.text())
    for failure in result.failures():
        click.echo(f"[demo] gate failed: {failure}", err=True)
    out = _shown(result.out)
    click.echo(f"[demo] built in {time.perf_counter() - start:.0f} s into {out}")
    click.echo(f"[demo] report:    {_shown(Path(result.report['html']))}  (also .md, evaluate.json)")
    if result.package is not None:
        package = _shown(result.package)
        click.echo(f"[demo] package:   {package}  (npm pack / npm publish from there)")
        click.echo(f"[demo] demo page: srjs serve {package}, then open the printed URL "
                   "(opened as a file it cannot load its models)")
    click.echo("")
    click.echo("Next: put srjs on the PATH with `. .venv/bin/activate` (or type .venv/bin/srjs), then try:")
    for line in next_steps(Path(out)):
        click.echo(f"  {line}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
