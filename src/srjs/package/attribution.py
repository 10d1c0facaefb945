"""Where a package's weights come from, and under which license (LICENSE + README credits).

The source is read from each model dir's manifest (a variant's own `source`, else its
parent's). npm sources carry their package's LICENSE file and `license`/`author` fields,
which are copied. For any other source only its file name and sha256 are named: local paths
would leak the build machine's layout, and srjs cannot know a local file's license.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from srjs import modeldir
from srjs.convert import npm

_LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "LICENCE")


@dataclass(frozen=True)
class Source:
    label: str  # npm:<name>@<version>/<path>, or a file name
    sha256: str | None
    license: str | None  # SPDX id when known
    author: str | None
    license_text: str | None
    homepage: str | None = None

    def credit(self) -> str:
        """One Markdown line: what the weights are and whose they are."""
        who = f" by {self.author}" if self.author else ""
        lic = f", license {self.license}" if self.license else ", license unknown (check before publishing)"
        return f"`{self.label}`{who}{lic}"


def _text(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("type")
    return str(value) if value else None


def source_of(model_dir: Path, manifest: modeldir.Manifest | None = None) -> Source:
    """The weights' origin for a model dir (follows `parent` when the variant has no source)."""
    manifest = manifest or modeldir.read_manifest(model_dir)
    if not (manifest.source or {}).get("path") and manifest.parent:
        chain = modeldir.lineage(model_dir)  # BadInput on a loop of parents
        manifest = next((m for _, m in chain if (m.source or {}).get("path")), chain[-1][1])
    src = dict(manifest.source or {})
    path = str(src.get("path") or "")
    sha = src.get("sha256")
    if npm.is_npm_spec(path):
        spec = npm.parse_spec(path)
        root = npm.package_dir(spec.name, spec.version)
        info = npm.package_json(root, spec.label)  # only the fields read here, type-checked
        text = next(((root / n).read_text(errors="replace") for n in _LICENSE_NAMES if (root / n).is_file()), None)
        repo = info.get("repository")
        return Source(label=spec.label, sha256=sha, license=_text(info.get("license")),
                      author=_text(info.get("author")), license_text=text,
                      homepage=info.get("homepage") or _text(repo.get("url") if isinstance(repo, dict) else repo))
    name = PurePosixPath(path.replace("\\", "/")).name or manifest.name
    return Source(label=name, sha256=sha, license=None, author=None, license_text=None)


def license_file(sources: list[Source]) -> str:
    """LICENSE text: one source's license verbatim, several each under a heading; unknown
    licenses are said to be unknown rather than guessed."""
    unique = list(dict.fromkeys(sources))
    if len(unique) == 1 and unique[0].license_text:
        return unique[0].license_text
    parts = []
    for s in unique:
        parts.append(f"Weights from {s.label}" + (f" (sha256 {s.sha256})" if s.sha256 else "") + ":\n")
        parts.append(s.license_text or "The license of these weights is not known to srjs. Do not "
                     "publish this package before finding it and replacing this text.\n")
    return "\n".join(parts)


def spdx(sources: list[Source]) -> str:
    """package.json `license`: the one SPDX id all sources share, else SEE LICENSE IN LICENSE."""
    ids = {s.license for s in sources}
    if len(ids) == 1 and None not in ids:
        return ids.pop()
    return "SEE LICENSE IN LICENSE"
