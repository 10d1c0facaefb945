"""Pictures for docs/zoo.md: a grayscale RRDBNet and an RGBA Compact through srjs's CLI paths.

    .venv/bin/python benchmarks/zoo_channel_pictures.py [--out docs/img] [--work /tmp/srjs-zoo-pictures]

Trained 1- and 4-channel checkpoints cannot be downloaded here, so both models are built with
weights whose output is known exactly: the old-arch grayscale ESRGAN x2 (spandrel's class) is
set to pass channel 0 straight through every conv (RRDB trunk zero), and the RGBA
SRVGGNetCompact x2 has all-zero convs, so it returns its own nearest-upsampled residual base.
Both therefore upscale by nearest neighbour: the pictures show what srjs feeds each model and
what it makes of the output (luminance in / gray out; alpha in / alpha out), not SR quality.

Steps, each with srjs's CLI: convert the .pth / .safetensors, upscale a PNG (opaque for the
grayscale model, with a round alpha for the RGBA one), package both
into one npm folder, open its demo page in headless Chromium (playwright-core, as
js/harness/demo-flow.mjs does), upscale the same PNGs with each entry and screenshot the page.
Writes zoo-channels.png (RGB photo | gray model's output, then RGBA photo | RGBA model's
output, over a checkerboard where transparent), zoo-demo-gray.png and zoo-demo-rgba.png (the
page with its before/after slider at 'after'), and prints the CLI output for the docs.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import spandrel_ref  # noqa: E402,F401  (torchvision stub, then spandrel)
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402

SRJS = str(Path(sys.executable).with_name("srjs"))


def gray_esrgan() -> dict:
    """Old-arch grayscale ESRGAN x2 (nf 8, 1 block) passing channel 0 through: nearest x2."""
    net = ESRGAN(in_nc=1, out_nc=1, num_filters=8, num_blocks=1, scale=2)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        state = net.state_dict()
        top = sorted({int(k.split(".")[1]) for k in state if k.count(".") == 2})  # model.N.weight
        for n in top:  # first conv, upconv, HR conv, last conv: centre tap 0 -> 0
            state[f"model.{n}.weight"][0, 0, 1, 1] = 1.0
    return state


def rgba_compact() -> dict:
    """RGBA SRVGGNetCompact x2 (nf 8, 2 convs) with zero convs: its nearest-upsampled input."""
    net = Compact(num_in_ch=4, num_out_ch=4, num_feat=8, num_conv=2, upscale=2)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.fill_(0.25 if name.endswith("1.weight") and p.dim() == 1 else 0.0)  # PReLU slopes kept
    return net.state_dict()


def rgba_photo(side: int = 96) -> np.ndarray:
    """Astronaut crop with a soft round alpha: an RGBA test image."""
    from skimage import data

    rgb = data.astronaut()[20:20 + 3 * side:3, 110:110 + 3 * side:3]
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    alpha = np.clip((side * 0.46 - np.hypot(yy, xx)) * 24, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


def on_checker(rgba: np.ndarray, cell: int = 8) -> np.ndarray:
    """RGBA over a grey checkerboard, as image viewers show transparency."""
    h, w = rgba.shape[:2]
    board = np.where(((np.arange(h)[:, None] // cell) + (np.arange(w)[None] // cell)) % 2, 204, 153)
    a = rgba[..., 3:4].astype(np.float64) / 255
    return (rgba[..., :3] * a + board[..., None] * (1 - a)).round().astype(np.uint8)


def run(*args: str) -> str:
    done = subprocess.run([SRJS, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"srjs {' '.join(args)} failed: {done.stderr}")
    print(f"$ srjs {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done.stdout


SCREENSHOT = r"""
import { chromium } from 'playwright-core';
const [chromiumPath, url, image, entry, shot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: chromiumPath,
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'] });
const page = await browser.newPage({ viewport: { width: 760, height: 640 } });
await page.goto(url);
await page.waitForFunction(() => window.srjsReady === true);
await page.selectOption('#entry', entry);
await page.selectOption('#backend', 'wasm');
await page.setInputFiles('#file', image);
await page.waitForFunction(() => !document.getElementById('run').disabled);
await page.click('#run');
await page.waitForFunction(() => /^(Done|Failed)/.test(document.getElementById('status').textContent));
const status = await page.locator('#status').textContent();
// the before/after slider to 'after' only: the picture shows the model's output
await page.locator('#slider').fill('0');
await page.locator('#slider').dispatchEvent('input');
await page.screenshot({ path: shot, fullPage: true });
console.log(JSON.stringify({ status }));
await browser.close();
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-zoo-pictures"))
    args = parser.parse_args()
    work, out = args.work, args.out
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)

    torch.save(gray_esrgan(), work / "gray-esrgan-x2.pth")
    from safetensors.torch import save_file

    save_file(rgba_compact(), str(work / "rgba-compact-x2.safetensors"))
    photo = rgba_photo()
    Image.fromarray(photo, "RGBA").save(work / "photo-rgba.png")
    Image.fromarray(photo[..., :3]).save(work / "photo-rgb.png")
    inputs = {"gray": work / "photo-rgb.png", "rgba": work / "photo-rgba.png"}

    run("convert", str(work / "gray-esrgan-x2.pth"), "-o", str(work / "gray"), "--name", "gray")
    run("convert", str(work / "rgba-compact-x2.safetensors"), "-o", str(work / "rgba"), "--name", "rgba")
    for name in ("gray", "rgba"):
        run("upscale", str(work / name), str(inputs[name]), "-o", str(work / f"{name}-x2.png"))
    run("package", str(work / "gray"), str(work / "rgba"), "-o", str(work / "pkg"), "--name", "zoo-channels",
        "--version", "0.1.0")

    gray_out = np.asarray(Image.open(work / "gray-x2.png").convert("RGBA"))
    rgba_out = np.asarray(Image.open(work / "rgba-x2.png").convert("RGBA"))
    big = lambda a: np.asarray(Image.fromarray(a).resize((192, 192), Image.NEAREST))  # noqa: E731
    gap = np.full((192, 8, 3), 255, np.uint8)
    wide = np.full((192, 24, 3), 255, np.uint8)
    panel = np.hstack([big(photo[..., :3]), gap, on_checker(gray_out), wide,
                       on_checker(big(photo)), gap, on_checker(rgba_out)])
    Image.fromarray(panel).save(out / "zoo-channels.png", optimize=True)

    from srjs.package import serve
    from srjs.runtime import env

    url, server = serve(work / "pkg", 0)
    try:
        script = env.js_dir() / ".zoo-screenshot.mjs"  # playwright-core resolves from js/
        script.write_text(SCREENSHOT)
        try:
            for name in ("gray", "rgba"):
                shot = work / f"demo-{name}.png"
                done = subprocess.run([env.node(), str(script), env.chromium(), url, str(inputs[name]),
                                       name, str(shot)], capture_output=True, text=True, timeout=300,
                                      cwd=env.js_dir())
                if done.returncode:
                    raise SystemExit(f"demo page ({name}) failed: {done.stderr}")
                print(f"demo page, entry {name}: {json.loads(done.stdout.strip().splitlines()[-1])['status']}")
                image = Image.open(shot).convert("RGB")
                image = image.crop((0, 0, image.width, min(image.height, 540)))  # controls + viewer
                image.thumbnail((480, 480))
                image.quantize(256).save(out / f"zoo-demo-{name}.png", optimize=True)  # small in git
        finally:
            script.unlink(missing_ok=True)
    finally:
        server.close()
    for name in ("zoo-channels.png", "zoo-demo-gray.png", "zoo-demo-rgba.png"):
        print(f"wrote {out / name} ({(out / name).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
