"""SPAN, PLKSR, RealPLKSR and Real-CUGAN end to end: convert, Node wasm verify, uint8, channel pruning.

    .venv/bin/python benchmarks/zoo_compact_sweep.py [--work /tmp/srjs-zoo-compact] [--steps 20]

Random-weight models from spandrel's classes at published sizes (SPAN 48 features x4; PLKSR and
RealPLKSR dim 64, kernel 17, x4, with 4 blocks instead of 28 to keep CPU time down; Real-CUGAN
2x pro), saved as .pth, converted with every TF.js export and verified in Node (wasm) against
Keras; then an uint8 variant and a `--prune-channels 0.5` variant (few fine-tune steps: random
weights have nothing to recover), each verified in Node wasm. Prints per model: params, conv
MACs per input pixel, each export's max |TF.js - Keras| / tolerance, uint8 weight bytes and
fidelity to the parent, and the MACs the pruned variant keeps.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.archs.test_zoo_compact as zoo  # noqa: E402  (imports spandrel through tests/spandrel_ref)
from srjs.convert.run import convert_checkpoint  # noqa: E402
from srjs.optimize.run import Recipe, make_variant  # noqa: E402
from srjs.verify import verify_model_dir  # noqa: E402

CASES = [
    ("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)),
    ("plksr", dict(dim=64, n_blocks=4, upscaling_factor=4, kernel_size=17)),
    ("realplksr", dict(dim=64, n_blocks=4, upscaling_factor=4, kernel_size=17)),
    ("realcugan", dict(pro=True)),
]


def _verify(model_dir: Path) -> str:
    report = verify_model_dir(model_dir, runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=0,
                              shapes=((24, 28),))
    return ", ".join(f"{r.format} {'ok' if r.ok else 'FAIL'} {r.max_abs_diff / r.tol:.3f} tol" for r in report.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-zoo-compact"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for family, hp in CASES:
        start = time.perf_counter()
        path = zoo.ref.save(zoo.make_model(family, hp).state_dict(), args.work / f"{family}.pth")
        parent = args.work / family
        manifest = convert_checkpoint(str(path), parent)
        line = (f"{family} x{manifest.scale}: {manifest.cost['params']} params, "
                f"{manifest.cost['conv_macs_per_pixel'] / 1e3:.1f} k MACs/px; verify {_verify(parent)}")
        u8 = make_variant(parent, args.work / f"{family}-uint8", Recipe(quantize="uint8"))
        q = u8.results
        line += (f"; uint8 {q['weight_bytes']} / {q['float32_weight_bytes']} B, fidelity "
                 f"{q['heldout']['fidelity_psnr_y']:.1f} dB, verify {_verify(args.work / f'{family}-uint8')}")
        pruned = make_variant(parent, args.work / f"{family}-ch50", Recipe(prune_channels=0.5, steps=args.steps))
        line += (f"; ch50 {pruned.cost['conv_macs_per_pixel'] / 1e3:.1f} k MACs/px "
                 f"({manifest.cost['conv_macs_per_pixel'] / pruned.cost['conv_macs_per_pixel']:.2f}x less), "
                 f"verify {_verify(args.work / f'{family}-ch50')}; {time.perf_counter() - start:.0f} s")
        print(line, flush=True)


if __name__ == "__main__":
    main()
