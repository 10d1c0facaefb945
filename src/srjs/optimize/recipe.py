"""What a variant is made by: the Recipe `srjs optimize`, sweeps and build configs share.

Its own light module (no numpy, no TensorFlow) so that the CLI and the build-config reader
reject an impossible recipe (`--quantize int4`, `--prune 3`) in a fraction of a second.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from srjs.errors import BadInput

# The dtypes --quantize names (optimize.quantize.DTYPES, which imports numpy, must agree).
DTYPES = ("float32", "float16", "uint16", "uint8")


def check_quantize(spec: str) -> None:
    """BadInput unless `spec` is a dtype, 'auto' or 'DTYPE:PATTERN,...' (patterns are matched
    against the weights later, once the model is loaded)."""
    spec = spec.strip()
    if spec in DTYPES or spec == "auto":
        return
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    for part in parts or [spec]:
        dtype, sep, pattern = part.partition(":")
        if dtype not in DTYPES:
            raise BadInput(f"--quantize: unknown dtype '{dtype}' (known: {', '.join(DTYPES)}, auto)")
        if not sep or not pattern:
            raise BadInput(f"--quantize '{part}': expected DTYPE or DTYPE:PATTERN (e.g. 'uint8:*conv*,float16:*')")


@dataclass
class Recipe:
    """How a variant is made; also what a build config's [[variants]] table holds.

    quantize: 'float16' | 'uint16' | 'uint8' | 'auto' | patterns ('uint8:*conv*,float16:*');
    None keeps float32. max_drop_db / min_fidelity_db: auto's budget (Y-PSNR drop vs HR, dB;
    floor on fidelity to the parent's output, dB). prune (sparsity in (0, 1)), cluster
    (clusters per weight), steps / time_budget_s (fine-tune bounds): see prune/cluster.
    prune_channels (fraction in (0, 1) of each prunable group's conv channels removed, so the
    network does less work): see optimize.channels. prune_depth (fraction in (0, 1) of the
    trunk's residual blocks dropped): see optimize.depth.
    calib: 'builtin' or a folder of images.
    """

    quantize: str | None = None
    max_drop_db: float | None = None
    min_fidelity_db: float | None = None
    prune: float | None = None
    prune_channels: float | None = None
    prune_depth: float | None = None
    cluster: int | None = None
    steps: int | None = None
    time_budget_s: float | None = None
    calib: str = "builtin"

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "Recipe":
        """A Recipe from a config table; BadInput naming an unknown or mistyped key and `where`."""
        known = {f.name: f for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise BadInput(f"{where}: unknown key '{key}' (known: {', '.join(known)})")
            kind = {"quantize": str, "calib": str, "cluster": int, "steps": int}.get(key, float)
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if isinstance(value, bool) or not ok:
                raise BadInput(f"{where}: '{key}' must be {kind.__name__}, not {value!r}")
        recipe = cls(**data)
        try:
            recipe.check()
        except BadInput as err:  # name the table the impossible request came from
            raise BadInput(f"{where}: {err.message}") from None
        return recipe

    def check(self) -> None:
        """BadInput for impossible requests, before anything is loaded or written."""
        if all(v is None for v in (self.quantize, self.prune, self.cluster, self.prune_channels, self.prune_depth)):
            raise BadInput("nothing to do: give --quantize, --prune, --prune-channels, --prune-depth or --cluster")
        if self.quantize is not None:
            check_quantize(self.quantize)
        for f in fields(self):  # nan passes every `<` test below, and inf is no budget or bound
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise BadInput(f"--{f.name.removesuffix('_s').replace('_', '-')} must be a finite number, "
                               f"not {value}")
        if self.max_drop_db is not None and self.max_drop_db < 0:
            raise BadInput(f"--max-drop-db must be >= 0, got {self.max_drop_db}")
        if self.quantize == "auto" and self.max_drop_db is None and self.min_fidelity_db is None:
            raise BadInput("--quantize auto needs a budget: --max-drop-db D and/or --min-fidelity-db F")
        if self.prune is not None and not 0 < self.prune < 1:
            raise BadInput(f"--prune must be a sparsity in (0, 1), got {self.prune}")
        if self.prune_channels is not None and not 0 < self.prune_channels < 1:
            raise BadInput(f"--prune-channels must be a fraction in (0, 1), got {self.prune_channels}")
        if self.prune_depth is not None and not 0 < self.prune_depth < 1:
            raise BadInput(f"--prune-depth must be a fraction in (0, 1), got {self.prune_depth}")
        if self.cluster is not None and self.cluster < 2:
            raise BadInput(f"--cluster must be at least 2 clusters, got {self.cluster}")
        if self.steps is not None and self.steps < 1:
            raise BadInput(f"--steps must be at least 1, got {self.steps}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise BadInput(f"--time-budget must be positive seconds, got {self.time_budget_s}")

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
