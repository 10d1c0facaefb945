"""Recognise the two Lambda bodies srjs translates (pixel shuffle, x * beta), in a child process.

A Keras 2/3 Lambda stores its function as base64 marshal data. marshal is not safe against
malicious input (crafted data can crash the interpreter or exhaust memory), so srjs never
unmarshals it in its own process: `analyse_isolated` hands the bytes to a fresh, isolated
Python (`-I`, empty environment, memory and CPU limits, a timeout) that unmarshals, reads
the instructions with `dis` (never runs them) and prints the verdict as JSON. Whatever goes
wrong there (a crash, a limit, garbage) means "not recognised".
"""
from __future__ import annotations

import base64
import dis
import json
import marshal
import resource
import subprocess
import sys
import types
from dataclasses import dataclass

_MAX_B64 = 1 << 16  # a pixel-shuffle or multiply lambda is a few hundred bytes
_TIMEOUT_S = 20
_MEMORY_BYTES = 1 << 30


def analyse_isolated(code_b64, closure, defaults, arguments) -> tuple | None:
    """('shuffle', scale) / ('multiply', beta) for a recognised Lambda body, else None."""
    if not isinstance(code_b64, str) or len(code_b64) > _MAX_B64:
        return None
    request = json.dumps({"code": code_b64, "closure": closure, "defaults": defaults,
                          "arguments": arguments})
    try:
        done = subprocess.run([sys.executable, "-I", "-m", "srjs.convert.lambda_code"], input=request,
                              capture_output=True, text=True, timeout=_TIMEOUT_S, env={},
                              preexec_fn=_limit_child)
        verdict = json.loads(done.stdout) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return None
    if (isinstance(verdict, list) and len(verdict) == 2 and verdict[0] in ("shuffle", "multiply")
            and isinstance(verdict[1], (int, float)) and not isinstance(verdict[1], bool)):
        return (verdict[0], int(verdict[1]) if verdict[0] == "shuffle" else float(verdict[1]))
    return None


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_BYTES, _MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (_TIMEOUT_S, _TIMEOUT_S))


def _main() -> None:
    """Child side: JSON request on stdin -> JSON verdict (or null) on stdout."""
    request = json.loads(sys.stdin.read())
    code = _load_code(request.get("code"))
    verdict = None
    if code is not None:
        verdict = _analyse_code(code, request.get("closure"), request.get("defaults"),
                                request.get("arguments") or {})
    print(json.dumps(verdict))


@dataclass(frozen=True)
class _Input:
    """Marker: the Lambda's input tensor."""


_TF_DEPTH_TO_SPACE = {("tf", "nn", "depth_to_space"), ("tf", "depth_to_space"),
                      ("tf", "compat", "v1", "depth_to_space"),
                      ("tf", "compat", "v1", "nn", "depth_to_space"), ("depth_to_space",)}
# Bookkeeping instructions that neither load a value nor compute anything.
_SKIP_OPS = {"RESUME", "CACHE", "NOP", "COPY_FREE_VARS", "PRECALL", "PUSH_NULL", "KW_NAMES",
             "MAKE_CELL", "EXTENDED_ARG"}
_CALL_OPS = {"CALL", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_METHOD", "CALL_KW"}


def _load_code(b64) -> types.CodeType | None:
    """Unmarshal a Keras-dumped function body, or None when this Python cannot read it.

    marshal's format changes between Python versions; bytecode from another version fails
    here (or decodes to instructions the strict patterns below do not accept).
    """
    if not isinstance(b64, str) or len(b64) > 1 << 16:
        return None
    try:
        code = marshal.loads(base64.b64decode(b64))
    except Exception:  # any malformed or foreign-version payload means "not recognised"
        return None
    return code if isinstance(code, types.CodeType) else None


def _analyse_code(code: types.CodeType, closure, defaults, arguments: dict):
    """('shuffle', scale) / ('multiply', beta) for the two exact shapes srjs translates."""
    params = list(code.co_varnames[:code.co_argcount])
    if not params:
        return None
    bound = dict(zip(params[len(params) - len(defaults or []):], defaults or []))
    bound.update(arguments or {})
    freevars = list(code.co_freevars)
    cells = list(closure or [])

    def value(ins):
        if ins.opname == "LOAD_FAST":
            if ins.argval == params[0]:
                return _Input()
            return bound.get(ins.argval, KeyError)
        if ins.opname == "LOAD_CONST":
            return ins.argval
        if ins.opname == "LOAD_DEREF" and ins.argval in freevars and len(cells) == len(freevars):
            return cells[freevars.index(ins.argval)]
        return KeyError

    ops = [i for i in dis.get_instructions(code) if i.opname not in _SKIP_OPS]
    if not ops or ops[-1].opname != "RETURN_VALUE":
        return None
    body = ops[:-1]
    is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    # x * c  |  c * x
    if len(body) == 3 and (body[2].opname == "BINARY_MULTIPLY"
                           or (body[2].opname == "BINARY_OP" and body[2].argrepr == "*")):
        a, b = value(body[0]), value(body[1])
        if isinstance(a, _Input) and is_num(b):
            return "multiply", float(b)
        if isinstance(b, _Input) and is_num(a):
            return "multiply", float(a)
        return None
    # tf.nn.depth_to_space(x, s[, data_format='NHWC'])
    if len(body) < 4 or body[0].opname != "LOAD_GLOBAL" or body[-1].opname not in _CALL_OPS:
        return None
    chain = [body[0].argval]
    rest = body[1:-1]
    while rest and rest[0].opname in ("LOAD_ATTR", "LOAD_METHOD"):
        chain.append(rest[0].argval)
        rest = rest[1:]
    if tuple(chain) not in _TF_DEPTH_TO_SPACE:
        return None
    values = [value(i) for i in rest]
    if any(v is KeyError for v in values) or any(i.opname in _CALL_OPS for i in rest):
        return None
    if not values or not isinstance(values[0], _Input):
        return None
    extra = [v for v in values[1:] if not (isinstance(v, tuple) and all(
        k in ("block_size", "data_format") for k in v))]  # <=3.10 keeps kwarg names as a const
    ints = [v for v in extra if is_num(v) and int(v) == v]
    if len(ints) != 1 or ints[0] < 2 or any(v not in ("NHWC",) and v not in ints for v in extra):
        return None
    return "shuffle", int(ints[0])


if __name__ == "__main__":
    _main()
