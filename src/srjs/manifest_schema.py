"""The schema of a model dir's manifest.json (srjs.manifest/1), checked on every read.

A model dir may come from anyone (a download, a shared drive), and every command reads its
manifest: names reach plots, file and npm names; scale and value_range drive the maths;
`files` and `parent` name paths. So each field has a type and a range, and a key the
Manifest dataclass does not have is refused (unknown fields are a newer or a forged schema;
there is no safe default meaning for them). Open-ended records (results, recipe, cost,
arch_params) may hold other keys, as JSON with finite numbers; the keys srjs reads are typed.
A Manifest field added without a spec here is checked as such JSON too.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from srjs import schema as s

SHA256 = s.string(r"[0-9a-f]{64}", expected="64 lowercase hex digits")
NAME = s.string(max_len=200, printable=True, expected="a printable name of at most 200 characters")
SCALAR = s.any_of(s.equals(None), s.boolean, s.number, s.string(max_len=s.MAX_STR),
                  expected="a string, finite number, boolean or null")
MAX_BYTES = 1 << 53  # JavaScript's exact integers


def _relative_file(value: Any, where: str) -> None:
    """A POSIX path inside the model dir: no absolute path, '..', backslash or control character."""
    s.string(max_len=1024, printable=True)(value, where)
    parts = value.split("/")
    if not value or value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise s.Invalid(where, "a relative path inside the model dir", value)


def _value_range(value: Any, where: str) -> None:
    s.list_of(s.number, min_len=2, max_len=2)(value, where)
    if value not in ([0, 1], [0, 255]):
        raise s.Invalid(where, "[0, 1] or [0, 255]", value)


def _name(value: Any, where: str) -> None:
    NAME(value, where)
    if not value.strip():
        raise s.Invalid(where, "a non-empty name", value)


# gzip_bytes is null for files that never ship (keras/, saved_model/: modeldir.SHIPPED_DIRS)
FILE_ENTRY = s.fields({"bytes": s.integer(0, MAX_BYTES), "gzip_bytes": s.optional(s.integer(0, MAX_BYTES)),
                       "sha256": SHA256})

SPECS: dict[str, s.Spec] = {
    "name": _name,
    "arch": s.string(r"[a-z][a-z0-9_]{0,63}", expected="an architecture name (lowercase, e.g. rrdbnet)"),
    "arch_params": s.map_of(s.any_of(SCALAR, s.list_of(SCALAR, max_len=64),
                                     expected="a scalar or an array of scalars"), max_len=256),
    "scale": s.integer(1, 16),
    "value_range": _value_range,
    "source": s.fields({}, {"path": s.optional(s.string(max_len=4096, printable=True)),
                            "format": s.optional(s.string(r"[A-Za-z0-9_.-]{1,32}", expected="a format name")),
                            "sha256": s.optional(SHA256)}),
    "value_range_from": s.string(max_len=1000),
    "parent": s.optional(s.string(r"[^\x00]{1,4096}", expected="a path")),
    "recipe": s.map_of(SCALAR, max_len=64),
    "results": s.fields({}, {"seam_free_padding": s.optional(s.integer(0, 4096)),
                             "seam_patch": s.optional(s.integer(1, 1 << 16)),
                             "quality": s.optional(s.map_of(s.json_value))}, extra=s.json_value),
    "files": s.map_of(FILE_ENTRY, key=_relative_file),
    "channels": s.equals(1, 3, 4),
    "arch_params_assumed": s.map_of(s.string(max_len=1000), max_len=256),
    "srjs_version": s.string(r"[0-9A-Za-z.+!_-]{1,64}", expected="a version string"),
}


def manifest_spec(schema_id: str, manifest_cls) -> s.Spec:
    """The spec of a manifest document: the dataclass's fields, required where it has no default."""
    required, optional = {}, {}
    for f in fields(manifest_cls):
        spec = SPECS.get(f.name, s.json_value)
        if f.name == "schema":
            spec = s.equals(schema_id)
        no_default = f.default is MISSING and f.default_factory is MISSING
        (required if no_default else optional)[f.name] = spec
    return s.fields(required, optional)
