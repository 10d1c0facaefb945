"""PLKSR and RealPLKSR (Partial Large Kernel CNNs for Efficient SR) in tf_keras.

Match spandrel's `PLKSR` and `RealPLKSR` at inference. Two families, one module (`SPECS`):

- plksr: feats.0 conv, n_blocks x PLKBlock (channel mixer CCM / ICCM / DCCM with GELU, a large
  kernel conv on the first `int(dim * split_ratio)` channels, optional element-wise attention
  `attn`, 1x1 `refine`, residual), last conv to 3*s*s, pixel shuffle + the nearest-upsampled input.
- realplksr: the same trunk with DCCM + Mish, an optional channel LayerNorm first
  (`layer_norm`) or a GroupNorm after `refine` (`norm`, 4 groups), and a Dropout before the last
  conv (identity at inference). DySample upsampling (`to_img.init_pos`) is refused.

The partial conv writes only the first pdim channels: here the mixer's last conv is split into
two convs (its first pdim output channels and the rest, the same arithmetic), the large kernel
conv reads the first, and a Concatenate joins them back - no channel slicing op needed in TF.js.
`with_idt` (x1 + conv(x1)) folds into the kernel's centre tap. RealPLKSR's GroupNorm is built
the same way: `refine` split per group, a LayerNormalization over (H, W, C/G) per group (no
params), Concatenate, then the per-channel affine as a 1x1 DepthwiseConv2D. Note GroupNorm
statistics span the whole image, so tiled upscaling of such a model is not seam-free.

Keras layer names follow the PyTorch module path with '.' -> '__'; split convs add '__part1'
(the second part) or '__g{k}' (group k).
"""
from __future__ import annotations

import re

import numpy as np

from srjs.archs import ArchSpec, check_weights, shape_errors_as_bad_input
from srjs.archs.layers import PixelShuffle, torch_to_tf_depth_order
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
_MIXER_KERNELS = {"CCM": (3, 1), "ICCM": (1, 3), "DCCM": (3, 3)}  # (channe_mixer.0, .2) sizes
_LK_TYPES = ("PLK", "SparsePLK", "RectSparsePLK")
GROUPNORM_EPS = 1e-5  # torch.nn.GroupNorm's default
LAYERNORM_EPS = 1e-6  # RealPLKSR's LayerNorm
DEFAULT_SPARSE_DILATIONS = [1, 2, 3, 4]
DEFAULT_KERNEL_SIZE = 17


def _pdim(dim: int, split_ratio: float) -> int:
    pdim = int(dim * split_ratio + 1e-9)  # split_ratio is read as pdim / dim: no float truncation
    if not 0 < pdim <= dim:
        raise BadInput(f"plksr: split_ratio {split_ratio} of dim {dim} leaves {pdim} large-kernel channels")
    return pdim


def _conv(filters, kernel, name, dilation=1):
    if isinstance(kernel, int):
        kernel = (kernel, kernel)
    if any(k % 2 == 0 for k in kernel):
        raise BadInput(f"plksr: kernel {kernel} of '{name}' is even; only odd kernels keep the image size")
    return L.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, name=name)


def _lk_convs(lk_type: str, kernel_size: int, sparse_kernels, sparse_dilations,
              use_max_kernel: bool) -> list[tuple[str, tuple, int]]:
    """(torch module name under 'lk', kernel (h, w), dilation) of every large-kernel conv."""
    if lk_type == "PLK":
        return [("conv", (kernel_size, kernel_size), 1)]
    if lk_type == "RectSparsePLK":
        m, n = kernel_size, kernel_size // 3
        return [("mn_conv", (m, n), 1), ("nm_conv", (n, m), 1), ("nn_conv", (n, n), 1)]
    if len(sparse_kernels) != len(sparse_dilations):
        raise BadInput(f"plksr: {len(sparse_kernels)} sparse kernels but {len(sparse_dilations)} dilations "
                       "(--arch-param sparse_dilations=[...])")
    convs = [(f"convs.{i}", (k, k), d) for i, (k, d) in enumerate(zip(sparse_kernels, sparse_dilations))]
    if use_max_kernel:
        size = max([kernel_size] + [(k - 1) * d + 1 for k, d in zip(sparse_kernels, sparse_dilations)])
        convs.append((f"convs.{len(convs)}", (size, size), 1))
    return convs


def _block(x, prefix: str, p: dict, real: bool):
    dim = p["dim"]
    pdim = _pdim(dim, p["split_ratio"])
    skip = x
    mixer = "channel_mixer" if real else "channe_mixer"
    if real and p["layer_norm"]:
        x = L.LayerNormalization(axis=-1, epsilon=LAYERNORM_EPS, name=f"{prefix}__layer_norm")(x)
    k0, k2 = _MIXER_KERNELS["DCCM" if real else p["ccm_type"]]
    x = _conv(2 * dim, k0, f"{prefix}__{mixer}__0")(x)
    x = L.Activation("mish" if real else "gelu", name=f"{prefix}__{mixer}__1")(x)
    part0 = _conv(pdim, k2, f"{prefix}__{mixer}__2")(x)
    lk_type = "PLK" if real else p["lk_type"]
    lks = [_conv(pdim, kernel, f"{prefix}__lk__{name.replace('.', '__')}", dilation)(part0)
           for name, kernel, dilation in _lk_convs(lk_type, p["kernel_size"], p.get("sparse_kernels", ()),
                                                   p.get("sparse_dilations", ()), p.get("use_max_kernel", False))]
    y = lks[0] if len(lks) == 1 else L.Add(name=f"{prefix}__lk__sum")(lks)
    if pdim < dim:
        part1 = _conv(dim - pdim, k2, f"{prefix}__{mixer}__2__part1")(x)
        y = L.Concatenate(axis=-1, name=f"{prefix}__lk__cat")([y, part1])
    if p["use_ea"]:
        gate = L.Activation("sigmoid", name=f"{prefix}__attn__f__1")(_conv(dim, 3, f"{prefix}__attn__f__0")(y))
        y = L.Multiply(name=f"{prefix}__attn")([y, gate])
    if real and not p["layer_norm"]:
        groups = int(p["norm_groups"])
        if dim % groups:
            raise BadInput(f"realplksr: dim {dim} is not divisible by norm_groups {groups}")
        parts = [L.LayerNormalization(axis=[1, 2, 3], epsilon=GROUPNORM_EPS, center=False, scale=False,
                                      name=f"{prefix}__norm__g{g}")(
                     _conv(dim // groups, 1, f"{prefix}__refine__g{g}")(y)) for g in range(groups)]
        y = parts[0] if groups == 1 else L.Concatenate(axis=-1, name=f"{prefix}__norm__cat")(parts)
        y = L.DepthwiseConv2D(1, name=f"{prefix}__norm")(y)  # GroupNorm's per-channel weight, bias
    else:
        y = _conv(dim, 1, f"{prefix}__refine")(y)
    return L.Add(name=f"{prefix}__out")([y, skip])


def _build(real: bool, p: dict) -> keras.Model:
    scale = int(p["scale"])
    if scale < 1 or int(p["dim"]) < 1 or int(p["n_blocks"]) < 0:
        raise BadInput(f"{'realplksr' if real else 'plksr'}: scale, dim must be >= 1 and n_blocks >= 0")
    if not real and p["lk_type"] not in _LK_TYPES:
        raise BadInput(f"plksr: lk_type must be one of {', '.join(_LK_TYPES)}, not '{p['lk_type']}'")
    if not real and p["ccm_type"] not in _MIXER_KERNELS:
        raise BadInput(f"plksr: ccm_type must be one of {', '.join(_MIXER_KERNELS)}, not '{p['ccm_type']}'")
    inp = L.Input((None, None, 3), name="lr_input")
    x = _conv(p["dim"], 3, "feats__0")(inp)
    for b in range(1, int(p["n_blocks"]) + 1):
        x = _block(x, f"feats__{b}", p, real)
    last = int(p["n_blocks"]) + (2 if real else 1)  # RealPLKSR has a Dropout2d in between
    x = _conv(3 * scale * scale, 3, f"feats__{last}")(x)
    base = inp
    if scale > 1:
        x = PixelShuffle(scale, name="to_img")(x)
        # repeat_interleave of the input then pixel shuffle is nearest upsampling
        base = L.UpSampling2D(scale, interpolation="nearest", name="repeat_op")(inp)
    out = L.Add(name="add_base")([x, base])
    return keras.Model(inp, out, name="realplksr" if real else "plksr")


def build_plksr(scale: int = 4, dim: int = 64, n_blocks: int = 28, ccm_type: str = "CCM",
                kernel_size: int = DEFAULT_KERNEL_SIZE, split_ratio: float = 0.25, lk_type: str = "PLK",
                use_max_kernel: bool = False, sparse_kernels=(5, 5, 5, 5),
                sparse_dilations=tuple(DEFAULT_SPARSE_DILATIONS), with_idt: bool = False,
                use_ea: bool = True) -> keras.Model:
    """PLKSR: input [N, H, W, 3] -> [N, sH, sW, 3] (spandrel's defaults: 64 dim, 28 blocks, 17x17)."""
    return _build(False, dict(locals()))


def build_realplksr(scale: int = 4, dim: int = 64, n_blocks: int = 28, kernel_size: int = DEFAULT_KERNEL_SIZE,
                    split_ratio: float = 0.25, use_ea: bool = True, norm_groups: int = 4,
                    layer_norm: bool = False) -> keras.Model:
    """RealPLKSR (pixel-shuffle upsampler): input [N, H, W, 3] -> [N, sH, sW, 3]."""
    return _build(True, dict(locals()))


# --- weights --------------------------------------------------------------------------------

def _model_params(model: keras.Model) -> dict:
    return model._srjs_params  # set by the SPEC builders below


def _source_layout(real: bool, p: dict) -> tuple[dict[str, tuple], list]:
    """({torch name: shape} in model order, [(keras layer, torch conv prefix, out slice, extra)]).

    Each entry of the second list says which rows of a torch conv a Keras conv takes; `extra`
    is 'idt' when the identity folds into that conv's centre tap.
    """
    dim, scale = int(p["dim"]), int(p["scale"])
    pdim = _pdim(dim, p["split_ratio"])
    shapes: dict[str, tuple] = {}
    convs: list = []

    def conv(torch_name, keras_name, c_in, c_out, kernel, rows=None, extra=None):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        shapes[f"{torch_name}.weight"] = (c_out, c_in, kh, kw)
        shapes[f"{torch_name}.bias"] = (c_out,)
        convs.append((keras_name, torch_name, rows if rows is not None else slice(None), extra))

    conv("feats.0", "feats__0", 3, dim, 3)
    mixer = "channel_mixer" if real else "channe_mixer"
    k0, k2 = _MIXER_KERNELS["DCCM" if real else p["ccm_type"]]
    for b in range(1, int(p["n_blocks"]) + 1):
        pre = f"feats.{b}"
        if real and p["layer_norm"]:
            shapes[f"{pre}.layer_norm.weight"] = (dim,)
            shapes[f"{pre}.layer_norm.bias"] = (dim,)
        conv(f"{pre}.{mixer}.0", f"feats__{b}__{mixer}__0", dim, 2 * dim, k0)
        conv(f"{pre}.{mixer}.2", f"feats__{b}__{mixer}__2", 2 * dim, dim, k2, rows=slice(0, pdim))
        if pdim < dim:
            convs.append((f"feats__{b}__{mixer}__2__part1", f"{pre}.{mixer}.2", slice(pdim, dim), None))
        lk_type = "PLK" if real else p["lk_type"]
        lks = _lk_convs(lk_type, p["kernel_size"], p.get("sparse_kernels", ()),
                        p.get("sparse_dilations", ()), p.get("use_max_kernel", False))
        for i, (name, kernel, _) in enumerate(lks):
            idt = "idt" if not real and p.get("with_idt") and i == 0 and lk_type != "RectSparsePLK" else None
            conv(f"{pre}.lk.{name}", f"feats__{b}__lk__{name.replace('.', '__')}", pdim, pdim, kernel, extra=idt)
        if p["use_ea"]:
            conv(f"{pre}.attn.f.0", f"feats__{b}__attn__f__0", dim, dim, 3)
        if real and not p["layer_norm"]:
            groups = int(p["norm_groups"])
            conv(f"{pre}.refine", f"feats__{b}__refine__g0", dim, dim, 1, rows=slice(0, dim // groups))
            for g in range(1, groups):
                convs.append((f"feats__{b}__refine__g{g}", f"{pre}.refine",
                              slice(g * dim // groups, (g + 1) * dim // groups), None))
            shapes[f"{pre}.norm.weight"] = (dim,)
            shapes[f"{pre}.norm.bias"] = (dim,)
        else:
            conv(f"{pre}.refine", f"feats__{b}__refine", dim, dim, 1)
    last = int(p["n_blocks"]) + (2 if real else 1)
    conv(f"feats.{last}", f"feats__{last}", dim, 3 * scale * scale, 3, extra="shuffle")
    return shapes, convs


def _loader(real: bool):
    family = "realplksr" if real else "plksr"

    def load(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
        """Assign a spandrel PLKSR / RealPLKSR state dict (OIHW kernels) to a model from `build`."""
        p = _model_params(model)
        shapes, convs = _source_layout(real, p)
        check_weights(family, shapes, weights)
        scale = int(p["scale"])
        values = []
        for keras_name, torch_name, rows, extra in convs:
            kernel = np.asarray(weights[f"{torch_name}.weight"], np.float32)[rows].copy()
            bias = np.asarray(weights[f"{torch_name}.bias"], np.float32)[rows]
            if extra == "idt":  # x1 + conv(x1): the identity is a 1 at the centre tap
                kh, kw = kernel.shape[2:]
                kernel[np.arange(len(kernel)), np.arange(len(kernel)), kh // 2, kw // 2] += 1.0
            kernel = kernel.transpose(2, 3, 1, 0)
            if extra == "shuffle" and scale > 1:
                perm = torch_to_tf_depth_order(kernel.shape[-1], scale)
                kernel, bias = kernel[..., perm], bias[perm]
            values.append((model.get_layer(keras_name), [np.ascontiguousarray(kernel), bias]))
        for b in range(1, int(p["n_blocks"]) + 1):
            pre = f"feats.{b}"
            if real and p["layer_norm"]:
                values.append((model.get_layer(f"feats__{b}__layer_norm"),
                               [weights[f"{pre}.layer_norm.weight"], weights[f"{pre}.layer_norm.bias"]]))
            elif real:
                gamma = np.asarray(weights[f"{pre}.norm.weight"], np.float32)
                values.append((model.get_layer(f"feats__{b}__norm"),
                               [gamma.reshape(1, 1, -1, 1), weights[f"{pre}.norm.bias"]]))
        keras.backend.batch_set_value([(var, np.asarray(value, np.float32))
                                       for layer, vals in values for var, value in zip(layer.weights, vals)])

    return load


def _with_params(builder):
    def build(**params) -> keras.Model:
        model = builder(**params)
        model._srjs_params = {**_defaults(builder), **params}
        return model

    build.__doc__ = builder.__doc__
    return build


def _defaults(builder) -> dict:
    import inspect

    return {k: v.default for k, v in inspect.signature(builder).parameters.items()}


# --- detection ------------------------------------------------------------------------------

_FEAT = re.compile(r"^feats\.(\d+)\.")


def _common(shapes: dict[str, tuple]) -> tuple[int, int, int] | None:
    """(dim, number of feats entries, scale), or None if not the PLKSR key condition."""
    if "feats.0.weight" not in shapes or "feats.1.refine.weight" not in shapes:
        return None
    if not any(k in shapes for k in ("feats.1.lk.conv.weight", "feats.1.lk.convs.0.weight",
                                     "feats.1.lk.mn_conv.weight")):
        return None
    indices = [int(m[1]) for m in map(_FEAT.match, shapes) if m]
    total = max(indices) + 1
    packed = shapes[f"feats.{total - 1}.weight"][0]
    scale = int(np.sqrt(packed // 3))
    if 3 * scale * scale != packed or shapes["feats.0.weight"][1] != 3:
        raise BadInput(f"plksr: feats.0 takes {shapes['feats.0.weight'][1]} channels and the last conv gives "
                       f"{packed}; PLKSR takes RGB and gives 3*scale^2 channels before the shuffle")
    return int(shapes["feats.0.weight"][0]), total, scale


@shape_errors_as_bad_input("plksr")
def detect_plksr(shapes: dict[str, tuple]) -> dict | None:
    """Params of a PLKSR state dict (the 'channe_mixer' spelling), or None."""
    common = _common(shapes)
    if common is None or "feats.1.channe_mixer.0.weight" not in shapes:
        return None
    dim, total, scale = common
    mixer = (shapes["feats.1.channe_mixer.0.weight"][2], shapes["feats.1.channe_mixer.2.weight"][2])
    ccm = {v: k for k, v in _MIXER_KERNELS.items()}.get(mixer)
    if ccm is None:
        raise BadInput(f"plksr: channel mixer kernels {mixer} are none of CCM (3, 1), ICCM (1, 3), DCCM (3, 3)")
    params = {"scale": scale, "dim": dim, "n_blocks": total - 2, "ccm_type": ccm,
              "kernel_size": DEFAULT_KERNEL_SIZE, "use_ea": "feats.1.attn.f.0.weight" in shapes,
              "with_idt": False}
    if "feats.1.lk.conv.weight" in shapes:
        lk = shapes["feats.1.lk.conv.weight"]
        params.update(lk_type="PLK", kernel_size=int(lk[2]))
    elif "feats.1.lk.mn_conv.weight" in shapes:
        lk = shapes["feats.1.lk.mn_conv.weight"]
        params.update(lk_type="RectSparsePLK", kernel_size=int(lk[2]))
    else:
        lk = shapes["feats.1.lk.convs.0.weight"]
        count = len({k for k in shapes if re.match(r"^feats\.1\.lk\.convs\.\d+\.weight$", k)})
        kernels = [int(shapes[f"feats.1.lk.convs.{i}.weight"][2]) for i in range(count)]
        params.update(lk_type="SparsePLK", use_max_kernel=False, sparse_kernels=kernels,
                      sparse_dilations=DEFAULT_SPARSE_DILATIONS[:count] if count <= 4 else [1] * count)
    params["split_ratio"] = lk[0] / dim
    return params


@shape_errors_as_bad_input("realplksr")
def detect_realplksr(shapes: dict[str, tuple]) -> dict | None:
    """Params of a RealPLKSR state dict (the 'channel_mixer' spelling), or None."""
    common = _common(shapes)
    if common is None or "feats.1.channel_mixer.0.weight" not in shapes:
        return None
    if "to_img.init_pos" in shapes:
        raise BadInput("realplksr: DySample upsampling (to_img.init_pos) is not supported "
                       "(its grid_sample has no TF.js layers equivalent); pixel-shuffle RealPLKSR is")
    dim, total, scale = common
    lk = shapes["feats.1.lk.conv.weight"]
    return {"scale": scale, "dim": dim, "n_blocks": total - 3, "kernel_size": int(lk[2]),
            "split_ratio": lk[0] / dim, "use_ea": "feats.1.attn.f.0.weight" in shapes,
            "norm_groups": 4, "layer_norm": "feats.1.layer_norm.bias" in shapes}


_WHY = "not in the weights; spandrel's default"


def assumed_plksr(shapes: dict[str, tuple], params: dict) -> dict[str, str]:
    """with_idt never shows in the weights; SparsePLK's dilations and max kernel neither."""
    out = {"with_idt": f"{_WHY}: false"}
    if params.get("lk_type") == "SparsePLK":
        out["sparse_dilations"] = f"{_WHY}: {params['sparse_dilations']}"
        out["use_max_kernel"] = f"{_WHY}: false"
    return out


def assumed_realplksr(shapes: dict[str, tuple], params: dict) -> dict[str, str]:
    return {} if params.get("layer_norm") else {"norm_groups": f"{_WHY}: 4"}


SPECS = (
    ArchSpec(name="plksr", default_value_range=(0, 1), build=_with_params(build_plksr),
             detect=detect_plksr, load=_loader(False), assumed=assumed_plksr),
    ArchSpec(name="realplksr", default_value_range=(0, 1), build=_with_params(build_realplksr),
             detect=detect_realplksr, load=_loader(True), assumed=assumed_realplksr),
)
