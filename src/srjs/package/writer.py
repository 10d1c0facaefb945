"""`srjs package`: model dirs -> one npm-ready folder in UpscalerJS's model-package shape.

```
package.json         exports per entry ("./<entry>": types/import/require/umd), "./<N>x" for the
                     first entry of each scale, "." for the first entry
models/<entry>/      model.json + weight shards, copied byte for byte from tfjs_layers|tfjs_graph
dist/esm|cjs|umd/    definition modules (definitions.py); dist/types/ their .d.ts
demo/                the demo page (demo.py)
README.md LICENSE    metrics table, usage, credits (readme.py, attribution.py)
srjs-package.json    entries and the sha256 of every other file
```

An entry is one (model dir, export) pair; its name is the model's manifest name, with
`-graph` added to graph entries when both exports ship. Output is deterministic: files are
written in a fixed order from sorted inputs, nothing records a time or a build-machine path,
so two runs give byte-identical folders.
"""
from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import srjs
from srjs import atomic, modeldir, strict_json, tfjs_weights
from srjs.errors import BadInput
from srjs.package import attribution, definitions, demo, onnx_entry, readme
from srjs.package.definitions import Definition

MANIFEST = "srjs-package.json"
SCHEMA = "srjs.package/1"
EXPORTS = {"layers": modeldir.TFJS_LAYERS_DIR, "graph": modeldir.TFJS_GRAPH_DIR}
# npm's rules: lowercase, URL-safe, at most 214 characters, optional @scope/.
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_name(name: str) -> str:
    if not name or len(name) > 214 or not _NPM_NAME.match(name):
        raise BadInput(f"'{name}' is not a valid npm package name (lowercase letters, digits, '-._~', "
                       "optionally @scope/name)")
    return name


def check_version(version: str) -> str:
    if not _SEMVER.match(version or ""):
        raise BadInput(f"'{version}' is not a semantic version (e.g. 1.0.0)")
    return version


def entry_name(model_name: str) -> str:
    """A model name as a package entry (and npm-safe default package name)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", model_name.lower()).strip("-._")
    return slug or "model"


def _meta(manifest: modeldir.Manifest) -> dict:
    """The definition's meta: architecture and the tiling evaluate measured (None if not)."""
    pad = manifest.results.get("seam_free_padding")
    tile = manifest.results.get("seam_patch")
    measured = isinstance(pad, int) and isinstance(tile, int)
    return {
        "architecture": manifest.arch,
        **{k: v for k, v in sorted(manifest.arch_params.items()) if isinstance(v, (int, float, str, bool))},
        "channels": manifest.channels,
        "name": manifest.name,
        "padding": pad if measured else None,
        "patchSize": tile + 2 * pad if measured else None,
        "tile": tile if measured else None,
        "srjsVersion": manifest.srjs_version,
    }


def _model_files(folder: Path) -> list[str]:
    """model.json plus the shards its weightsManifest names: plain files directly in `folder`,
    no symbolic links (a link would ship whatever it points at, e.g. a file from the build
    machine), and each group's shards exactly as many bytes as its weights need."""
    model_json = folder / "model.json"
    if folder.is_symlink():
        raise BadInput(f"'{folder}' is a symbolic link; srjs packages only a model dir's own files")
    if not model_json.is_file():
        raise BadInput(f"'{folder}' has no model.json; convert with the TF.js exports (not --no-tfjs)")
    data = tfjs_weights.read_model_json(model_json)
    paths = [p for g in tfjs_weights.manifest_groups(data, str(model_json)) for p in g.get("paths") or []]
    for p in paths:
        if not isinstance(p, str) or not _SHARD_NAME.match(p) or p in (".", "..") or not (folder / p).exists():
            raise BadInput(f"'{model_json}' names weight file {p!r}, which is not a file beside it")
    for name in ("model.json", *paths):
        if (folder / name).is_symlink() or not (folder / name).is_file():
            raise BadInput(f"'{folder / name}' is a symbolic link or not a plain file; srjs packages only "
                           "a model dir's own files")
    tfjs_weights.check_shards(data, folder, str(model_json))  # sizes against the weights manifest
    return ["model.json", *paths]


def _sizes(folder: Path, names: list[str]) -> tuple[int, int]:
    data = [(folder / n).read_bytes() for n in names]
    return sum(map(len, data)), sum(modeldir.gzip_size(d) for d in data)  # the manifest's level


def _atomic_package(out: Path):
    """A temporary sibling renamed onto `out` at the end; only an earlier package (it has
    srjs-package.json) or an empty folder is ever replaced."""
    return atomic.atomic_dir(out, is_ours=lambda p: (p / MANIFEST).is_file(), what="an srjs package")


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def _exports(defs: list[Definition]) -> dict:
    def conditions(d: Definition) -> dict:
        return {
            "types": f"./{definitions.TYPES_DIR}/{d.entry}.d.ts",
            "umd": f"./{definitions.UMD_DIR}/{d.entry}.umd.js",
            "import": f"./{definitions.ESM_DIR}/{d.entry}.mjs",
            "require": f"./{definitions.CJS_DIR}/{d.entry}.cjs",
        }

    preferred = [d for d in defs if d.kind == "layers"] or defs  # UpscalerJS users import ./4x
    exports = {".": conditions(preferred[0])}
    for d in preferred:
        exports.setdefault(f"./{d.scale}x", conditions(d))
    for d in defs:
        exports[f"./{d.entry}"] = conditions(d)
    exports["./package.json"] = "./package.json"
    exports["./models/*"] = "./models/*"
    return exports


def _about(facts: "readme.EntryFacts") -> dict:
    """What the demo page's model list shows for an entry: gzip bytes and measured Y-PSNR."""
    about = {"gzip_bytes": facts.gzip_bytes}
    psnr = facts.quality.get("psnr_y")
    if isinstance(psnr, (int, float)) and math.isfinite(psnr):
        about |= {"psnr_y": round(float(psnr), 2), "dataset": facts.quality.get("dataset")}
    return about


def write_package(model_dirs: list[Path], out: Path, *, name: str, version: str,
                  exports: tuple[str, ...] = ("layers",), report: dict | None = None) -> Path:
    """Write the npm package for `model_dirs` to `out` atomically; returns `out`.

    exports: which TF.js exports ship, ("layers",), ("graph",) or both. report: an
    `srjs evaluate --json` document (Evaluation.to_dict()) for the README's quality columns;
    its model rows are matched to model dirs by `path`, then by `name` (optional).
    Raises BadInput for a bad name/version/exports, a dir that is not a model dir or lacks
    the export, or two dirs that would make the same entry; nothing is written then.
    """
    check_name(name)
    check_version(version)
    if report is not None:
        readme.check_report(report)
    if not model_dirs:
        raise BadInput("give at least one model dir to package")
    # onnx ships beside a TF.js export: alone it means layers + onnx
    with_onnx = "onnx" in exports
    kinds = tuple(k for k in EXPORTS if k in exports) or (("layers",) if with_onnx else ())
    if not kinds or len(set(kinds) | set(exports) - {"onnx"}) != len(kinds):
        raise BadInput(f"exports must be layers, graph or both (and/or onnx), not {','.join(exports) or 'nothing'}")

    plans = []  # (definition, source folder, files, manifest, model dir)
    onnx_plans = []  # (onnx_entry.OnnxEntry, manifest)
    seen: dict[str, Path] = {}
    for model_dir in map(Path, model_dirs):
        manifest = modeldir.read_manifest(model_dir)
        for kind in kinds:
            entry = entry_name(manifest.name) + ("-graph" if kind == "graph" and len(kinds) == 2 else "")
            if entry in seen:
                raise BadInput(f"'{seen[entry]}' and '{model_dir}' both make package entry '{entry}'; "
                               "give the model dirs distinct manifest names")
            seen[entry] = model_dir
            folder = model_dir / EXPORTS[kind]
            files = _model_files(folder)
            d = Definition(entry=entry, kind=kind, scale=int(manifest.scale),
                           value_range=tuple(manifest.value_range), meta=_meta(manifest),
                           package=name, version=version, channels=int(manifest.channels))
            plans.append((d, folder, files, manifest, model_dir))
        if with_onnx:  # '<name>-onnx': onnx/ files for onnxruntime-web (onnx_entry.py)
            e = onnx_entry.plan(model_dir, manifest, entry_name(manifest.name), name, version, _meta(manifest))
            if e.entry in seen:
                raise BadInput(f"'{seen[e.entry]}' and '{model_dir}' both make package entry '{e.entry}'")
            seen[e.entry] = model_dir
            onnx_plans.append((e, manifest))

    sources = [attribution.source_of(md, m) for _, _, _, m, md in plans]
    defs = [p[0] for p in plans]
    with _atomic_package(out) as root:
        facts = []
        for d, folder, files, manifest, model_dir in plans:
            target = root / "models" / d.entry
            target.mkdir(parents=True)
            for f in files:
                shutil.copyfile(folder / f, target / f)
            _write(root, f"{definitions.ESM_DIR}/{d.entry}.mjs", definitions.esm(d))
            _write(root, f"{definitions.CJS_DIR}/{d.entry}.cjs", definitions.cjs(d))
            _write(root, f"{definitions.UMD_DIR}/{d.entry}.umd.js", definitions.umd(d))
            _write(root, f"{definitions.TYPES_DIR}/{d.entry}.d.ts", definitions.types(d))
            size, gz = _sizes(folder, files)
            facts.append(readme.EntryFacts(d, manifest.name, manifest.arch, size, gz,
                                           readme.quality_from(report, model_dir, manifest.name, manifest.results)))
        _write(root, f"{definitions.TYPES_DIR}/definition.d.ts", definitions.TYPES_COMMON)
        onnx_about = {}
        for e, _ in onnx_plans:
            written = onnx_entry.write_entry(root, e)
            onnx_about[e.entry] = {"gzip_bytes": _sizes(written[0].parent, [written[0].name])[1]}
        demo.write_demo(root, [*defs, *(e for e, _ in onnx_plans)],
                        {f.definition.entry: _about(f) for f in facts} | onnx_about)
        if onnx_plans:
            onnx_entry.write_runtime(root)
            onnx_entry.write_vendor(root / "demo")
        _write(root, "README.md", readme.render(name, version, facts, sources)
               + onnx_entry.readme_section(name, [e for e, _ in onnx_plans]))
        _write(root, "LICENSE", attribution.license_file(sources))
        first = _exports(defs)["."]
        package_json = {
            "name": name,
            "version": version,
            "description": f"Super-resolution model{'s' if len(defs) > 1 else ''} "
                           f"({', '.join(dict.fromkeys(f'{m.arch} x{m.scale}' for _, _, _, m, _ in plans))}) "
                           "for UpscalerJS and TensorFlow.js, packaged by srjs",
            "keywords": ["super resolution", "upscaling", "tensorflowjs", "upscalerjs", "esrgan"],
            "license": attribution.spdx(sources),
            "exports": _exports(defs) | onnx_entry.exports([e for e, _ in onnx_plans]),
            "main": first["require"],
            "module": first["import"],
            "types": first["types"],
            "umd:main": first["umd"],
            "files": ["dist/", "models/", "demo/", "README.md", "LICENSE", MANIFEST],
            "peerDependencies": {"@tensorflow/tfjs": "^4.0.0",
                                 **({"onnxruntime-web": ">=1.20.0"} if onnx_plans else {})},
            **({"peerDependenciesMeta": {"onnxruntime-web": {"optional": True}}} if onnx_plans else {}),
            "sideEffects": False,
            "srjs": {"entries": {d.entry: {"kind": d.kind, "scale": d.scale}
                                 for d in [*defs, *(e for e, _ in onnx_plans)]}},
        }
        _write(root, "package.json", strict_json.dumps(package_json, indent=2) + "\n")
        index = {
            "schema": SCHEMA,
            "name": name,
            "version": version,
            "srjs_version": srjs.__version__,
            "entries": [{"entry": d.entry, "kind": d.kind, "scale": d.scale, "model": m.name,
                         "source": s.label, "source_sha256": s.sha256, "meta": d.meta}
                        for (d, _, _, m, _), s in zip(plans, sources)]
                       + [{"entry": e.entry, "kind": e.kind, "scale": e.scale, "model": m.name,
                           "float16_activations": e.float16_activations, "meta": e.meta} for e, m in onnx_plans],
            "files": {str(p.relative_to(root).as_posix()): {"bytes": p.stat().st_size,
                                                             "sha256": modeldir.sha256_file(p)}
                      for p in sorted(root.rglob("*")) if p.is_file()},
        }
        _write(root, MANIFEST, strict_json.dumps(index, indent=2, sort_keys=True) + "\n")
    return Path(out)
