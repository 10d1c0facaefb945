"""Convert + Node wasm verify across the ESRGAN family's layouts, scales and channels (docs/zoo.md).

    .venv/bin/python benchmarks/zoo_esrgan_sweep.py [--work /tmp/srjs-zoo-sweep]

Random-weight models from spandrel's classes (tests/archs/test_zoo_esrgan.py's builders: nf 8,
one block; Compact nf 8, two convs), saved as .safetensors, converted with every TF.js export
and verified in Node (wasm) against Keras. Prints one line per model: image channels, the
manifest's cost, and each export's max |TF.js - Keras| with its tolerance.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.archs.test_zoo_esrgan as zoo  # noqa: E402
from srjs.convert.run import convert_checkpoint  # noqa: E402
from srjs.verify import verify_model_dir  # noqa: E402

RRDB = [("old", "x1", 3, False), ("old", "x2", 1, True), ("old", "x8", 4, False), ("old", "x16", 1, False),
        ("basicsr", "x4", 3, False), ("basicsr", "x2-unshuffle", 4, False), ("basicsr", "x1-unshuffle", 1, False),
        ("bsrgan", "x2", 3, False)]
COMPACT = [(1, 3, "prelu"), (1, 1, "relu"), (8, 4, "prelu"), (3, 3, "leakyrelu")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-zoo-sweep"))
    work = parser.parse_args().work
    work.mkdir(parents=True, exist_ok=True)
    cases = [("rrdbnet", c, zoo.rrdb_state(*c)[1]) for c in RRDB]
    cases += [("compact", c, zoo.compact_state(*c)[1]) for c in COMPACT]
    worst = 0.0
    for family, case, state in cases:
        name = f"{family}-" + "-".join(map(str, case))
        path = zoo.ref.save(state, work / f"{name}.safetensors")
        override = {"act_type": "leakyrelu"} if family == "compact" and case[2] == "leakyrelu" else None
        start = time.perf_counter()
        manifest = convert_checkpoint(str(path), work / name, arch_params=override)
        report = verify_model_dir(work / name, runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=0)
        rows = ", ".join(f"{r.format} {'ok' if r.ok else 'FAIL'} {r.max_abs_diff:.1e} (tol {r.tol:.1e})"
                         for r in report.rows)
        worst = max([worst] + [r.max_abs_diff / r.tol for r in report.rows])
        print(f"{name}: {manifest.channels} ch, {manifest.cost['params']} params, "
              f"{manifest.cost['conv_macs_per_pixel']:.0f} MACs/px; {rows}; {time.perf_counter() - start:.0f} s",
              flush=True)
    print(f"largest diff / tolerance: {worst:.3f}")


if __name__ == "__main__":
    main()
