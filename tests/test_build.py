"""The build contract: pinned and verified libbpf, a private static copy inside the extension."""

from __future__ import annotations

import ast
import gzip
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import cffi
import pytest

import pybpfmap
from pybpfmap import _libbpf

ROOT = Path(__file__).resolve().parent.parent
FETCH = ROOT / "vendor" / "libbpf" / "fetch-build.sh"
PINNED_SHA = "53492aff6dd47e4da04ef5e672d753b9743848bdb38e9d90eafbe190b7983c44"

pytestmark = pytest.mark.unprivileged


def test_linked_libbpf_version_is_the_pinned_one() -> None:
    """LIBBPF_VERSION comes from the linked library and matches the pin."""
    pin = dict(
        line.split("=", 1) for line in (FETCH.parent / "pin").read_text().splitlines() if "=" in line
    )
    assert pin["orig_sha256"] == PINNED_SHA
    assert pybpfmap.LIBBPF_VERSION == pin["version"] == "1.5.0"


def test_extension_exports_no_libbpf_symbol() -> None:
    """libbpf stays private: no bpf_*, btf__* or libbpf_* in the dynamic symbol table, no libbpf.so needed."""
    so = _libbpf.__file__
    nm = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in nm.splitlines() if line.strip()]
    assert "PyInit__libbpf" in names
    leaked = [n for n in names if n.startswith(("bpf_", "btf__", "libbpf_", "pbm_"))]
    assert leaked == []
    ldd = subprocess.run(["ldd", so], capture_output=True, text=True, check=True).stdout
    assert "libbpf" not in ldd
    assert "libelf" in ldd


def _fake_tarball(path: Path) -> Path:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("libbpf-1.5.0/README")
        payload = b"not libbpf\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    path.write_bytes(gzip.compress(data.getvalue()))
    return path


def test_tarball_with_wrong_sha256_stops_the_build(tmp_path: Path) -> None:
    """A tampered tarball given through LIBBPF_TARBALL is refused, naming both hashes, and nothing is built."""
    tarball = _fake_tarball(tmp_path / "libbpf_1.5.0.orig.tar.gz")
    actual = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True, check=True).stdout.split()[0]
    env = dict(os.environ, LIBBPF_TARBALL=str(tarball), LIBBPF_WORKDIR=str(tmp_path / "work"))
    result = subprocess.run([str(FETCH)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode != 0
    assert "sha256 mismatch" in result.stderr
    assert PINNED_SHA in result.stderr
    assert actual in result.stderr
    assert not (tmp_path / "work" / "build").exists()
    assert not (tmp_path / "work" / "src").exists()


def test_missing_override_tarball_is_named(tmp_path: Path) -> None:
    """An override that points nowhere fails with the path in the message."""
    env = dict(os.environ, LIBBPF_TARBALL=str(tmp_path / "nope.tar.gz"), LIBBPF_WORKDIR=str(tmp_path))
    result = subprocess.run([str(FETCH)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode != 0
    assert "nope.tar.gz" in result.stderr


def test_second_run_reuses_the_build() -> None:
    """With libbpf built, the script neither fetches nor rebuilds: the archive is untouched."""
    archive = FETCH.parent / "build" / "lib" / "libbpf.a"
    before = archive.stat().st_mtime_ns
    result = subprocess.run([str(FETCH)], capture_output=True, text=True, check=True)
    assert "already built" in result.stdout
    assert archive.stat().st_mtime_ns == before


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_libbpf_source_is_committed() -> None:
    """vendor/libbpf holds the pin and the script, never libbpf's source."""
    files = subprocess.run(
        ["git", "ls-files", "vendor/libbpf"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(files) == ["vendor/libbpf/.gitignore", "vendor/libbpf/fetch-build.sh", "vendor/libbpf/pin"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_wheel_from_a_clean_clone_installs_and_imports(tmp_path: Path) -> None:
    """`pip wheel .` of a fresh clone holds libbpf inside the extension; the wheel works in a new venv."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    python = Path(sys.executable)
    # Reuse the libbpf already built here (LIBBPF_WORKDIR) and the venv's setuptools and cffi, so the test
    # checks the packaging rather than the network.
    env = dict(os.environ, LIBBPF_WORKDIR=str(FETCH.parent))
    subprocess.run(
        [str(python), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
         str(clone)],
        check=True, env=env, cwd=clone,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("pybpfmap-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], check=True)
    # The wheel's one runtime dependency, cffi, comes from this test's own environment rather than the network.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    cffi_home = Path(cffi.__file__).resolve().parent.parent
    (site / "test-cffi.pth").write_text(f"{cffi_home}\n")
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata, pybpfmap; print(pybpfmap.LIBBPF_VERSION, "
         "pybpfmap.__file__, pybpfmap.__version__, importlib.metadata.version('pybpfmap'))"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert out[0] == "1.5.0"
    assert out[1].startswith(str(venv))
    assert out[2] == out[3] == _source_version()  # the installed metadata is the version written in the source
    # The wheel carries pybpfmap's licence and libbpf's, and says so in its metadata.
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode().split("\n\n", 1)[0].splitlines()
        dist_info = metadata.rsplit("/", 1)[0]
        libbpf_notice = archive.read(f"{dist_info}/licenses/LICENSES/libbpf-BSD-2-Clause.txt").decode()
        assert archive.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert "License-Expression: BSD-2-Clause" in headers
    assert {"License-File: LICENSE", "License-File: LICENSES/libbpf-BSD-2-Clause.txt"} <= set(headers)
    assert "Copyright (c) 2015 The Libbpf Authors" in libbpf_notice


def _source_version() -> str:
    """The version as written in src/pybpfmap/_version.py, read the way setuptools' ``attr:`` reads it."""
    tree = ast.parse((ROOT / "src" / "pybpfmap" / "_version.py").read_text())
    (assign,) = [node for node in tree.body if isinstance(node, ast.Assign)]
    assert isinstance(assign.value, ast.Constant) and isinstance(assign.value.value, str)
    return assign.value.value


def test_the_version_is_written_once() -> None:
    """pybpfmap.__version__ is the source's version; pyproject takes it from there rather than stating its own, the
    metadata of an install from this tree agrees, and the CHANGELOG's latest release is it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pybpfmap._version.__version__"}
    assert pybpfmap.__version__ == _source_version()
    try:
        installed = importlib.metadata.distribution("pybpfmap")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    # An install made from another checkout (an editable one elsewhere) has that checkout's version.
    if installed is not None and _installed_from_here(installed):
        assert installed.version == pybpfmap.__version__


def _installed_from_here(dist: importlib.metadata.Distribution) -> bool:
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("url") == ROOT.as_uri():  # pip install [-e] of this tree
        return True
    return Path(pybpfmap.__file__).resolve().is_relative_to(Path(str(dist.locate_file(""))).resolve())
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases and releases[0] == pybpfmap.__version__
