"""`make demo`: the main job end to end on the default model, printing where outputs are.

Default model: UpscalerJS esrgan-slim x4 from npm. Stages: convert (Keras, SavedModel,
TF.js layers + graph), upscale a scikit-image photo tiled, verify in TF.js (Node), evaluate
with an HTML report.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

DEFAULT_SOURCE = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json"


def main(out_root: Path = Path("artifacts")) -> None:
    from srjs.cli import cli

    model_dir = out_root / "esrgan-slim-x4"
    demo_dir = out_root / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    _prepare_input(demo_dir / "chelsea-lr.png")
    steps = [
        ["convert", DEFAULT_SOURCE, "-o", str(model_dir)],
        ["upscale", str(model_dir), str(demo_dir / "chelsea-lr.png"), "-o", str(demo_dir / "chelsea-x4.png"),
         "--tile", "48", "--pad", "8"],
        ["verify", str(model_dir), "--runtime", "node", "--json", str(demo_dir / "verify.json")],
        ["evaluate", str(model_dir), "--dataset", "builtin", "--json", str(demo_dir / "evaluate.json"),
         "--report", str(demo_dir / "report.html"), "--record"],
    ]
    for step in steps:
        if step[0] not in cli.commands:
            click.echo(f"[demo] skipping '{step[0]}': not built yet")
            continue
        click.echo(f"[demo] srjs {' '.join(step)}")
        try:
            cli.main(step, standalone_mode=False)
        except click.ClickException as err:
            click.echo(f"[demo] '{step[0]}' failed: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
    click.echo(f"[demo] model dir: {model_dir.resolve()}")
    click.echo(f"[demo] outputs:   {demo_dir.resolve()}")
    report = demo_dir / "report.html"
    if report.exists():
        click.echo(f"[demo] report:    {report.resolve()}")


def _prepare_input(path: Path) -> None:
    """A small LR photo: scikit-image's chelsea, bicubic-downscaled x4 (MATLAB-style)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from srjs.evaluate.resize import bicubic_downsample

    lr = bicubic_downsample(data.chelsea(), 4)
    Image.fromarray(np.clip(np.round(lr), 0, 255).astype(np.uint8)).save(path)


if __name__ == "__main__":
    main()
