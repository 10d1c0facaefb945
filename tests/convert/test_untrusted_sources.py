"""Hostile wheels, npm tarballs and package.json files: exit 2, one line, nothing written.

The registries are replaced by local files (pypi._download / npm._pack / npm._registry_version
are monkeypatched), so these run offline; the fetchers' checks are what is under test.
"""
from __future__ import annotations

import io
import json
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _error_lines(output: str) -> list[str]:
    """stderr without convert's note that it is fetching from a registry (printed before any check)."""
    return [line for line in output.strip().splitlines() if not line.startswith("[convert] fetching ")]


def _assert_refused(result, out: Path, needle: str, cache: Path) -> None:
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1, result.output
    assert needle in lines[0], lines[0]
    assert not out.exists()
    leftovers = [p for p in cache.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers  # no half-unpacked archive in the cache


# --- wheels -----------------------------------------------------------------------------

def _wheel(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


@pytest.mark.parametrize("members, needle", [
    ([("pkg/m.param", b"7767517\n"), ("pkg/m.param", b"other")], "holds member 'pkg/m.param' twice"),
    ([("pkg/m", b"a file"), ("pkg/m/x.param", b"7767517\n")], "has a file 'pkg/m' where other members need a folder"),
    ([("pkg/m/x.param", b"7767517\n"), ("pkg/m", b"a file")], "has a file 'pkg/m' where other members need a folder"),
])
def test_wheel_with_clashing_members_exits_2(tmp_path, monkeypatch, members, needle):
    from srjs.convert import pypi

    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", members)
    monkeypatch.setenv("SRJS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pypi, "_download", lambda name, version, dest: wheel)
    out = tmp_path / "out"
    result = run_cli("convert", "pypi:pkg@1.0/pkg/m/x.param", "-o", out, "--no-tfjs")
    _assert_refused(result, out, needle, tmp_path / "cache")


# --- npm tarballs -----------------------------------------------------------------------

GOOD_PACKAGE_JSON = {"name": "fake", "version": "1.2.3", "@upscalerjs": {"modelFamily": "esrgan"}}


def _tarball(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """members: (name, bytes) files or (name, None) folders, in order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _package(path: Path, package_json: object = None, extra=()) -> Path:
    text = package_json if isinstance(package_json, str) else json.dumps(package_json or GOOD_PACKAGE_JSON)
    return _tarball(path, [("package/package.json", text.encode()),
                           ("package/models/x4/model.json", b"{}"), *extra])


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """npm with one package 'fake' whose tarball and `latest` tag the test sets; records packs."""
    from srjs.convert import npm

    registry = {"tarball": None, "latest": "1.2.3", "packed": [], "viewed": []}

    def pack(name, version, dest):
        registry["packed"].append(f"{name}@{version}")
        return registry["tarball"]

    def view(name, tag):
        registry["viewed"].append(f"{name}@{tag}")
        return registry[tag]

    monkeypatch.setenv("SRJS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(npm, "_pack", pack)
    monkeypatch.setattr(npm, "_registry_version", view)
    monkeypatch.setattr(npm, "_PINNED", {})
    return registry


@pytest.mark.parametrize("package_json, needle", [
    ({"@upscalerjs": "esrgan"}, "field '@upscalerjs' must be an object, not str"),
    ({"@upscalerjs": ["esrgan"]}, "field '@upscalerjs' must be an object, not list"),
    ({"@upscalerjs": {"modelFamily": 7}}, "field '@upscalerjs.modelFamily' must be a string, not int"),
    ([1, 2], "package.json is not a JSON object"),
    ("{not json", "package.json is not readable JSON"),
    ("[" * 100_000, "package.json is not readable JSON"),  # nesting past Python's recursion limit
])
def test_package_json_of_the_wrong_shape_exits_2(tmp_path, fake_npm, package_json, needle):
    fake_npm["tarball"] = _package(tmp_path / "fake.tgz", package_json)
    out = tmp_path / "out"
    result = run_cli("convert", "npm:fake@1.2.3/models/x4/model.json", "-o", out, "--no-tfjs")
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and needle in lines[0], result.output
    assert not out.exists()


@pytest.mark.parametrize("field, value, needle", [
    ("license", 5, "field 'license' must be a string or an object, not int"),
    ("license", {"type": ["MIT"]}, "field 'license.type' must be a string, not list"),
    ("author", ["me"], "field 'author' must be a string or an object, not list"),
    ("author", {"name": {"first": "x"}}, "field 'author.name' must be a string, not dict"),
    ("homepage", ["https://x"], "field 'homepage' must be a string, not list"),
    ("repository", {"url": 1}, "field 'repository.url' must be a string, not int"),
])
def test_package_json_fields_srjs_reads_are_type_checked(tmp_path, field, value, needle):
    from srjs.convert.npm import package_json
    from srjs.errors import BadInput

    (tmp_path / "package.json").write_text(json.dumps({**GOOD_PACKAGE_JSON, field: value}))
    with pytest.raises(BadInput, match="^npm:fake@1.2.3: package.json ") as err:
        package_json(tmp_path, "npm:fake@1.2.3")
    assert needle in str(err.value)


def test_package_json_keeps_only_the_fields_srjs_reads(tmp_path):
    from srjs.convert.npm import package_json

    (tmp_path / "package.json").write_text(json.dumps({
        **GOOD_PACKAGE_JSON, "license": "MIT", "author": {"name": "Me", "email": 3},
        "repository": {"type": "git", "url": "https://x/y.git"}, "homepage": None, "scripts": 5}))
    assert package_json(tmp_path, "x") == {
        "name": "fake", "version": "1.2.3", "@upscalerjs": {"modelFamily": "esrgan"}, "license": "MIT",
        "author": {"name": "Me"}, "repository": {"url": "https://x/y.git"}}


@pytest.mark.parametrize("extra, limits, needle", [
    ([("package/big.bin", b"\0" * 2000)], {"MAX_MEMBER_BYTES": 1000}, "member 'package/big.bin' is 2000 bytes (limit 1000)"),
    ([("package/a.bin", b"\0" * 600), ("package/b.bin", b"\0" * 600)], {"MAX_TOTAL_BYTES": 1000},
     f"unpacks to {len(json.dumps(GOOD_PACKAGE_JSON)) + 2 + 1200} bytes (limit 1000)"),
    ([(f"package/f{i}", b"") for i in range(10)], {"MAX_MEMBERS": 5}, "members (limit 5)"),
    ([("package/models/x4/model.json", b"{}")], {}, "holds member 'package/models/x4/model.json' twice"),
    ([("package/models", b"file")], {}, "has a file 'package/models' where other members need a folder"),
])
def test_npm_tarball_caps_and_layout(tmp_path, fake_npm, monkeypatch, extra, limits, needle):
    from srjs.convert import archives

    for name, value in limits.items():
        monkeypatch.setattr(archives, name, value)
    fake_npm["tarball"] = _package(tmp_path / "fake.tgz", extra=extra)
    out = tmp_path / "out"
    result = run_cli("convert", "npm:fake@1.2.3/models/x4/model.json", "-o", out, "--no-tfjs")
    _assert_refused(result, out, needle, tmp_path / "cache")


def test_npm_tarball_with_a_link_out_or_garbage_exits_2(tmp_path, fake_npm):
    link = tmp_path / "link.tgz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("package/package.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    for tarball, needle in ((link, "is not a readable npm tarball"),):
        fake_npm["tarball"] = tarball
        out = tmp_path / "out"
        result = run_cli("convert", "npm:fake@1.2.3/models/x4/model.json", "-o", out, "--no-tfjs")
        _assert_refused(result, out, needle, tmp_path / "cache")
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"\x1f\x8b" + b"\0" * 50)
    fake_npm["tarball"] = garbage
    result = run_cli("convert", "npm:fake@1.2.3/models/x4/model.json", "-o", tmp_path / "out", "--no-tfjs")
    _assert_refused(result, tmp_path / "out", "is not a readable npm tarball", tmp_path / "cache")


# --- tags -------------------------------------------------------------------------------

def test_tag_is_resolved_to_an_exact_version_before_caching(tmp_path, fake_npm):
    from srjs.convert import npm

    fake_npm["tarball"] = _package(tmp_path / "fake.tgz")
    assert npm.pin("npm:fake@latest/models/x4/model.json") == "npm:fake@1.2.3/models/x4/model.json"
    assert npm.pin("npm:fake@1.0.0/models/x4") == "npm:fake@1.0.0/models/x4"  # exact: no lookup
    assert npm.resolve("npm:fake@latest/models/x4/model.json") == \
        tmp_path / "cache" / "npm" / "fake@1.2.3" / "models" / "x4" / "model.json"
    assert fake_npm["packed"] == ["fake@1.2.3"]
    assert not (tmp_path / "cache" / "npm" / "fake@latest").exists()

    fake_npm["latest"] = "1.2.4"  # the tag moves: a new process fetches the new version
    npm._PINNED.clear()
    assert npm.resolve("npm:fake@latest/models/x4/model.json").parts[-4] == "fake@1.2.4"
    assert fake_npm["packed"] == ["fake@1.2.3", "fake@1.2.4"]
    assert fake_npm["viewed"] == ["fake@latest", "fake@latest"]


@pytest.mark.parametrize("stdout, needle", [
    ('["1.0.0", "1.0.1"]', "names 2 versions; give one exact version"),
    ("", "npm has no version fake@nope"),
    ('"not a version"', "npm has no version fake@nope"),
    ('{"x": 1}', "npm has no version fake@nope"),
])
def test_registry_answers_are_checked(monkeypatch, stdout, needle):
    import subprocess

    from srjs.convert import npm
    from srjs.errors import BadInput

    monkeypatch.setattr(npm.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout, ""))
    with pytest.raises(BadInput, match=needle):
        npm._registry_version("fake", "nope")


@pytest.mark.slow
def test_real_latest_tag_resolves_to_an_exact_version():
    from srjs.convert import npm

    version = npm._registry_version("@upscalerjs/esrgan-slim", "latest")
    assert npm._EXACT.match(version) and version != "latest", version


def test_converted_from_a_tag_records_the_exact_version(tmp_path, fake_npm):
    import torch

    from srjs import modeldir
    from tests.torch_reference import SRVGGNetCompact

    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(SRVGGNetCompact(3, 3, num_feat=4, num_conv=1, upscale=2).state_dict(), weights)
    fake_npm["tarball"] = _package(tmp_path / "fake.tgz", {"name": "fake", "version": "1.2.3"},
                                   extra=[("package/models/tiny.pth", weights.read_bytes())])
    out = tmp_path / "out"
    result = run_cli("convert", "npm:fake@latest/models/tiny.pth", "-o", out, "--no-tfjs", "--value-range", "0-1")
    assert result.exit_code == 0, result.output
    assert modeldir.read_manifest(out).source["path"] == "npm:fake@1.2.3/models/tiny.pth"


def test_package_credits_read_the_checked_fields(tmp_path, fake_npm):
    from types import SimpleNamespace

    from srjs.package.attribution import source_of
    from srjs.errors import BadInput

    fields = {"name": "fake", "version": "1.2.3", "license": "MIT", "author": {"name": "Ada", "email": 1},
              "repository": {"type": "git", "url": "https://example.org/fake.git"}}
    fake_npm["tarball"] = _package(tmp_path / "fake.tgz", fields, extra=[("package/LICENSE", b"MIT text")])
    manifest = SimpleNamespace(source={"path": "npm:fake@1.2.3/models/x4", "sha256": "ab"}, parent=None, name="m")
    source = source_of(tmp_path, manifest)
    assert (source.label, source.license, source.author, source.homepage, source.license_text) == (
        "npm:fake@1.2.3/models/x4", "MIT", "Ada", "https://example.org/fake.git", "MIT text")

    bad = tmp_path / "cache" / "npm" / "fake@1.2.3" / "package.json"
    bad.write_text(json.dumps({**fields, "author": ["Ada"]}))
    with pytest.raises(BadInput, match="field 'author' must be a string or an object, not list"):
        source_of(tmp_path, manifest)
