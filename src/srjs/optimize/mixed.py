"""`--quantize auto`: a dtype per tensor, fewest shipped bytes within a quality budget.

Budget: the Y-PSNR drop against HR stays <= max_drop_db and (optionally) the fidelity to
the parent's output stays >= min_fidelity_db. Every tensor starts at uint16 (2 bytes,
65535 levels: indistinguishable from float here); tensors move to calibrated uint8 in
order of least output harm per byte saved (each tensor's harm alone, to first order:
optimize.layerwise.projected_harm), and the longest prefix that keeps the calibration
images within budget is found by bisection. The variant is then re-measured on held-out
images and, if over budget there, backed off (most harmful tensors first) to the longest
shorter prefix within budget, again by bisection: whole-network passes grow with
log2(tensors), not with tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from srjs.optimize.calib import Quality
from srjs.tfjs_weights import Encoding


@dataclass
class AutoResult:
    encodings: dict[str, Encoding]
    uint8: list[str]  # tensors stored as uint8, in the order they were admitted
    backed_off: list[str] = field(default_factory=list)  # moved back to uint16 after the held-out check
    calib_quality: Quality | None = None
    evaluations: int = 0


def within(quality: Quality, parent_psnr: float, max_drop_db: float, min_fidelity_db: float | None) -> bool:
    if parent_psnr - quality.psnr_y > max_drop_db + 1e-9:
        return False
    return min_fidelity_db is None or (quality.fidelity_psnr_y or 0.0) >= min_fidelity_db


def choose(sizes: dict[str, int], uint8: dict[str, Encoding], uint16: dict[str, Encoding],
           harm: dict[str, float], measure_calib: Callable[[dict[str, Encoding]], Quality],
           measure_heldout: Callable[[dict[str, Encoding]], Quality], parent_calib: float,
           parent_heldout: float, max_drop_db: float, min_fidelity_db: float | None) -> AutoResult:
    """Pick uint8 or uint16 per tensor (see the module docstring).

    sizes: elements per tensor; uint8/uint16: the calibrated encodings of each; harm: output
    MSE with only that tensor at uint8; measure_*: quality of a full assignment on the
    calibration / held-out crops; parent_*: the parent's Y-PSNR on them.
    """
    order = sorted(sizes, key=lambda n: harm[n] / max(sizes[n], 1))  # least harm per byte saved first
    evaluations = 0

    def assignment(k: int) -> dict[str, Encoding]:
        chosen = set(order[:k])
        return {n: (uint8[n] if n in chosen else uint16[n]) for n in sizes}

    def ok(k: int, measure, parent: float) -> tuple[bool, Quality]:
        nonlocal evaluations
        evaluations += 1
        quality = measure(assignment(k))
        return within(quality, parent, max_drop_db, min_fidelity_db), quality

    low, high = 0, len(order)  # ok(low) is assumed (uint16 is lossless at these budgets)
    best_quality = None
    good, quality = ok(high, measure_calib, parent_calib)
    if good:
        low, best_quality = high, quality
    while high - low > 1:  # bisection: ok(low) holds, ok(high) does not
        mid = (low + high) // 2
        good, quality = ok(mid, measure_calib, parent_calib)
        if good:
            low, best_quality = mid, quality
        else:
            high = mid
    k = low
    if k > 0 and not ok(k, measure_heldout, parent_heldout)[0]:
        good_k, bad_k = 0, k  # held out: ok(good_k) is assumed, ok(bad_k) failed
        while bad_k - good_k > 1:
            mid = (good_k + bad_k) // 2
            if ok(mid, measure_heldout, parent_heldout)[0]:
                good_k = mid
            else:
                bad_k = mid
        k = good_k
    backed = list(reversed(order[k:low]))  # most harmful admitted tensor first
    return AutoResult(assignment(k), order[:k], backed, best_quality, evaluations)


def max_evaluations(tensors: int) -> int:
    """Most whole-network passes `choose` makes for `tensors` tensors (two bisections + checks)."""
    bits = max(1, int(tensors).bit_length())
    return 2 * bits + 2
