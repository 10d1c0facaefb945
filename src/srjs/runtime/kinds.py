"""Every runtime srjs can run a model in, with its backends: the one list commands consult.

verify, bench and upscale each accept a subset (`for_command`); their defaults come from
here, so a new backend or runtime is added in one place.
"""
from __future__ import annotations

from dataclasses import dataclass

from srjs.errors import BadInput


@dataclass(frozen=True)
class RuntimeKind:
    """One runtime.

    backends: every backend it can run. check_backends: what `verify` runs by default (each
    backend whose arithmetic can differ). timing_backends: what `bench` times by default (the
    backend a user would pick there). commands: which srjs commands accept it.
    """

    name: str
    backends: tuple[str, ...]
    check_backends: tuple[str, ...]
    timing_backends: tuple[str, ...]
    commands: frozenset[str]
    about: str


KINDS: dict[str, RuntimeKind] = {k.name: k for k in (
    RuntimeKind("python", ("tf",), ("tf",), ("tf",), frozenset({"bench", "upscale"}),
                "TensorFlow (tf_keras) in this process"),
    RuntimeKind("node", ("cpu", "wasm"), ("cpu", "wasm"), ("cpu", "wasm"),
                frozenset({"verify", "bench", "upscale"}), "TF.js 4.x in Node"),
    RuntimeKind("browser", ("cpu", "webgl", "wasm", "webgpu"), ("cpu", "webgl"), ("wasm",),
                frozenset({"verify", "bench"}), "TF.js 4.x in headless Chromium (WebGL on SwiftShader here)"),
    RuntimeKind("upscalerjs", ("cpu", "webgl"), ("cpu",), ("cpu",), frozenset({"verify"}),
                "the layers export inside UpscalerJS 1.0.0 in headless Chromium"),
    RuntimeKind("ort-node", ("wasm",), ("wasm",), ("wasm",), frozenset({"verify", "bench"}),
                "onnxruntime-web 1.30 (wasm) in Node, on the model dir's onnx/ files"),
    RuntimeKind("ort-browser", ("wasm", "webgpu"), ("wasm", "webgpu"), ("wasm",), frozenset({"verify", "bench"}),
                "onnxruntime-web 1.30 in headless Chromium (WebGPU on SwiftShader here), on onnx/"),
    RuntimeKind("legacy", ("cpu",), ("cpu",), ("cpu",), frozenset(),
                "TF.js 1.7 in Node (UpscalerJS 0.x's runtime; tests only)"),
)}


def for_command(command: str) -> tuple[str, ...]:
    """Names of the runtimes `command` accepts, in catalogue order."""
    return tuple(name for name, kind in KINDS.items() if command in kind.commands)


def get(name: str, command: str) -> RuntimeKind:
    """The runtime `name` as `command` may use it; BadInput naming the known ones otherwise."""
    known = for_command(command)
    if name not in known:
        raise BadInput(f"unknown runtime '{name}' for {command} (known: {', '.join(known)})")
    return KINDS[name]
