"""How reliably does one pruning recipe meet issue 7's target? The same `srjs optimize` recipe
on esrgan-slim x4, once per fine-tune seed.

Target: gzip'd weights <= 1/7 of float32's, <= 0.1 dB Y-PSNR drop against HR, fine-tune
<= 10 minutes. Each run is `make_variant` (what `srjs optimize DIR -o OUT --prune 0.5
--cluster 16 --steps N --quantize uint8` runs: distillation, strip, srjs's calibrated uint8
with pruned zeros kept exact); only the random patches the fine-tune draws differ, through the
`seed` of `optimize.distill.distill` (the CLI always uses seed 0). Quality is what the variant's
manifest records on the held-out crops; gzip is of its tfjs_layers shards.

    nice -n 10 .venv/bin/python benchmarks/pruning_seeds.py --slim SLIM_X4_DIR --seeds 1,2,3 --steps 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slim", type=Path, required=True, help="model dir of `srjs convert` esrgan-slim x4")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=2000, help="pruning steps (clustering gets a fifth)")
    parser.add_argument("--prune", type=float, default=0.5)
    parser.add_argument("--cluster", type=int, default=16)
    parser.add_argument("--cosine", action="store_true", help="cosine learning-rate decay in both fine-tunes")
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-pruning-seeds"))
    args = parser.parse_args()

    import srjs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
    from srjs.optimize import distill
    from srjs.optimize.run import Recipe, make_variant

    original = distill.distill
    parent_gzip = _gzip(args.slim)
    print(f"float32 shards gzip {parent_gzip} bytes; recipe: --prune {args.prune} --cluster {args.cluster} "
          f"--steps {args.steps} --quantize uint8{' (cosine decay)' if args.cosine else ''}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        def seeded(*a, _seed=seed, **k):
            k.setdefault("seed", _seed)
            if args.cosine and (k.get("steps") or 0) > 10:  # not the 6-step timing probe
                k.setdefault("cosine_decay", True)
            return original(*a, **k)

        distill.distill = seeded
        out = args.work / f"seed{seed}-{args.steps}{'-cos' if args.cosine else ''}"
        manifest = make_variant(args.slim, out, Recipe(prune=args.prune, cluster=args.cluster, steps=args.steps,
                                                       quantize="uint8"))
        held, gz = manifest.results["heldout"], _gzip(out)
        fit = manifest.results["prune"]["fine_tune"]["seconds"] + manifest.results["cluster"]["fine_tune"]["seconds"]
        print(json.dumps({"seed": seed, "drop_db": held["drop_db"], "fidelity_db": held["fidelity_psnr_y"],
                          "gzip_bytes": gz, "x_smaller_gzip": round(parent_gzip / gz, 2),
                          "fine_tune_s": round(fit, 1)}), flush=True)
    distill.distill = original
    return 0


def _gzip(model_dir: Path) -> int:
    from srjs import modeldir

    files = modeldir.read_manifest(model_dir).files
    return sum(v["gzip_bytes"] for k, v in files.items() if k.startswith("tfjs_layers/") and k.endswith(".bin"))


if __name__ == "__main__":
    sys.exit(main())
