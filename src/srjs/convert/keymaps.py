"""Rename ESRGAN RRDBNet weights from the historical key layouts to BasicSR's names.

Three layouts of the same network circulate:

- ``old``: the original ESRGAN release (e.g. RRDB_ESRGAN_x4.pth), a flattened nn.Sequential
  from ESRGAN's architecture.py/block.py. ``model.0`` is the first conv, ``model.1`` the
  shortcut around ``sub`` (the RRDB blocks ``sub.0..nb-1``, each conv wrapped in a Sequential,
  hence ``.0``; then the trunk conv ``sub.nb``), and after it every upsampler contributes
  (upsample, conv, lrelu), followed by (HR conv, lrelu, last conv). For x4 the convs are
  ``model.3, model.6`` (upsampling), ``model.8`` (HR) and ``model.10`` (last); x1 has none
  (``model.2``, ``model.4``), x8 three. ESRGAN+ blocks add a bias-free 1x1 conv per dense block,
  ``model.1.sub.N.RDBk.conv1x1.weight``.
- ``new``: ESRGAN's RRDBNet_arch.py after 2019 and BSRGAN / RealSR (``RRDB_trunk``,
  ``trunk_conv``, ``upconv1..n``, ``HRconv``), the names its transer_RRDB_models.py converts
  ``old`` into.
- ``basicsr``: BasicSR / Real-ESRGAN ``RRDBNet`` (``body.N.rdbK.convJ``, ``conv_body``,
  ``conv_up1..n``, ``conv_hr``), the canonical names the srjs builders load (ESRGAN+'s extra
  conv: ``body.N.rdbK.conv1x1``).

Before any renaming, training wrappers' common prefixes (``module.`` from DataParallel,
``netG.`` from BasicSR-style GAN trainers) are stripped, as spandrel's canonicalize does.

Keys that a layout does not know are kept unchanged, so that the architecture loader can
name them instead of silently dropping weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Mapping, TypeVar

from srjs.errors import BadInput

Layout = Literal["old", "new", "basicsr"]
V = TypeVar("V")

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_PLUS = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv1x1\.weight$")  # ESRGAN+
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)$")
_NEW_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$")
_NEW_RENAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr"}
_NEW_UPCONV = re.compile(r"upconv(\d+)$")  # upconv1..n -> conv_up1..n
_WRAPPER_PREFIXES = ("module.", "netG.")
_BASICSR_RDB = re.compile(r"body\.\d+\.rdb\d\.conv\d\.(weight|bias)$")


def _is_basicsr(keys: set[str]) -> bool:
    return "conv_first.weight" in keys and "conv_body.weight" in keys and any(
        _BASICSR_RDB.match(k) for k in keys
    )


def _is_new(keys: set[str]) -> bool:
    return "trunk_conv.weight" in keys and any(_NEW_RDB.match(k) for k in keys)


def _is_old(keys: set[str]) -> bool:
    return "model.0.weight" in keys and any(_OLD_RDB.match(k) or _OLD_PLUS.match(k) for k in keys)


def _old_names(keys: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    trunk = [int(m.group(1)) for k in keys if (m := _OLD_TRUNK.match(k))]
    # The trunk conv follows the last RRDB block, so it is the highest plain index in sub.
    body_index = max(trunk) if trunk else None
    top = sorted({int(m.group(1)) for k in keys if (m := _OLD_TOP.match(k))} - {0})
    # From the end: last conv, HR conv; everything between model.1 and those upsamples.
    tail = {}
    if len(top) >= 2:
        tail = {top[-1]: "conv_last", top[-2]: "conv_hr"}
        tail.update({i: f"conv_up{n}" for n, i in enumerate(top[:-2], start=1)})
    for key in keys:
        if m := _OLD_RDB.match(key):
            block, rdb, conv, param = m.groups()
            names[key] = f"body.{block}.rdb{rdb}.conv{conv}.{param}"
        elif m := _OLD_PLUS.match(key):
            names[key] = f"body.{m.group(1)}.rdb{m.group(2)}.conv1x1.weight"
        elif (m := _OLD_TRUNK.match(key)) and int(m.group(1)) == body_index:
            names[key] = f"conv_body.{m.group(2)}"
        elif m := _OLD_TOP.match(key):
            index, param = int(m.group(1)), m.group(2)
            if index == 0:
                names[key] = f"conv_first.{param}"
            elif index in tail:
                names[key] = f"{tail[index]}.{param}"
    return names


def _new_names(keys: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for key in keys:
        if m := _NEW_RDB.match(key):
            block, rdb, conv, param = m.groups()
            names[key] = f"body.{block}.rdb{rdb}.conv{conv}.{param}"
        else:
            module, _, param = key.rpartition(".")
            if param not in ("weight", "bias"):
                continue
            if module in _NEW_RENAMES:
                names[key] = f"{_NEW_RENAMES[module]}.{param}"
            elif m := _NEW_UPCONV.match(module):
                names[key] = f"conv_up{m.group(1)}.{param}"
    return names


@dataclass(frozen=True)
class _LayoutRule:
    name: Layout
    matches: Callable[[set[str]], bool]
    names: Callable[[set[str]], dict[str, str]]


# BasicSR first: a basicsr dict must never be renamed because it also has stray old keys.
_LAYOUTS = (
    _LayoutRule("basicsr", _is_basicsr, lambda keys: {}),
    _LayoutRule("new", _is_new, _new_names),
    _LayoutRule("old", _is_old, _old_names),
)


def rrdbnet_layout(keys: Iterable[str]) -> Layout | None:
    """Which RRDBNet key layout `keys` use: 'old', 'new', 'basicsr', or None if not RRDBNet."""
    key_set = set(keys)
    for rule in _LAYOUTS:
        if rule.matches(key_set):
            return rule.name
    return None


def to_basicsr(state_dict: Mapping[str, V]) -> dict[str, V]:
    """A new dict with RRDBNet weights renamed to BasicSR keys; values are the same objects.

    Dicts already in BasicSR layout and dicts of other networks come back unchanged (as a
    new dict) but for wrapper prefixes every key shares (``module.``, ``netG.``), which are
    dropped. Keys a layout does not know stay as they are. Raises BadInput if a renamed key
    would collide with a key already present.
    """
    state_dict = strip_wrapper_prefixes(state_dict)
    key_set = set(state_dict)
    rule = next((r for r in _LAYOUTS if r.matches(key_set)), None)
    names = rule.names(key_set) if rule else {}
    out: dict[str, V] = {}
    for key, value in state_dict.items():
        new = names.get(key, key)
        if new in out:
            raise BadInput(
                f"RRDBNet weights: '{key}' renames to '{new}', which the checkpoint already has"
            )
        out[new] = value
    return out


def strip_wrapper_prefixes(state_dict: Mapping[str, V]) -> dict[str, V]:
    """`state_dict` without a `module.` / `netG.` prefix that every key carries (either order).

    Only a prefix shared by all keys goes: a lone 'netG.x' among other names is a real name.
    """
    out = dict(state_dict)
    for prefix in _WRAPPER_PREFIXES + _WRAPPER_PREFIXES:
        if out and all(key.startswith(prefix) for key in out):
            out = {key[len(prefix):]: value for key, value in out.items()}
    return out
