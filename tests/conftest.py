"""Shared fixtures. Real models come from npm through srjs's own cache (one place)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import srjs  # noqa: F401  (legacy-Keras switch before anything imports TensorFlow)


def npm_model(spec: str) -> Path:
    """Local path of a file inside an npm package (fetched once into ~/.cache/srjs)."""
    from srjs.convert import npm

    return npm.resolve(spec)


SLIM_X4 = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json"
SLIM_X2 = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x2/model.json"
THICK_X2 = "npm:@upscalerjs/esrgan-thick@1.0.0/models/x2/model.json"
ISR_PSNR_SMALL = ("npm:@upscalerjs/models@0.9.0/models/idealo/psnr-small-quant-uint8/"
                  "image-super-resolution-psnr-small.h5")


def run_cli(*args: str):
    """Run `srjs ARGS` in-process like the console script (exit codes, one-line errors)."""
    from srjs.cli import cli

    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False, standalone_mode=True)


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """convert(source, **options) -> model dir; each distinct conversion runs once per session."""
    from srjs.convert.run import convert_checkpoint

    cache: dict = {}
    root = tmp_path_factory.mktemp("converted")

    def convert(source: str, **options) -> Path:
        key = (str(source), tuple(sorted(options.items())))
        if key not in cache:
            out = root / f"m{len(cache)}"
            convert_checkpoint(str(source), out, **options)
            cache[key] = out
        return cache[key]

    return convert


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_x4_dir(converted, tmp_path_factory):
    """A tiny SRVGG x4 model dir (4 features, Keras only, random weights): upscales 16 px in ms.
    For tests of what happens around the network (inputs, outputs, limits)."""
    import torch

    from tests.torch_reference import SRVGGNetCompact

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-x4") / "tiny.pth"
    torch.save(SRVGGNetCompact(3, 3, num_feat=4, num_conv=1, upscale=4).state_dict(), path)
    return converted(str(path), export_tfjs=False)
