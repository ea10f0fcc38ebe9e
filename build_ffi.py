"""CFFI builder for ``pybpfmap._libbpf``: out-of-line API mode, linked against the vendored static libbpf.

The declarations handed to ``cdef`` are the project's own headers in ``include/``; the C compiler checks them
against the real libbpf and UAPI headers of the vendored build, which come first on the include path because
the system ``linux/bpf.h`` may be older than libbpf's. ``-Wl,--exclude-libs,ALL`` keeps libbpf's symbols
private to the extension, so it cannot clash with another libbpf loaded into the same process.

Run by setuptools (``cffi_modules`` in setup.py) or directly: ``python build_ffi.py``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
INCLUDE = ROOT / "include"
LIBBPF_BUILD = Path(os.environ.get("LIBBPF_WORKDIR", ROOT / "vendor" / "libbpf")) / "build"


def built_libbpf() -> tuple[Path, str]:
    """Return the path of the vendored libbpf.a and its version, building it first if needed."""
    archive = LIBBPF_BUILD / "lib" / "libbpf.a"
    if not archive.exists():
        subprocess.run([str(ROOT / "vendor" / "libbpf" / "fetch-build.sh")], check=True)
    pc = LIBBPF_BUILD / "lib" / "pkgconfig" / "libbpf.pc"
    for line in pc.read_text().splitlines():
        if line.startswith("Version:"):
            return archive, line.split(":", 1)[1].strip()
    raise RuntimeError(f"{pc} has no Version: line")


def cdef_headers() -> list[Path]:
    """What ``cdef`` reads, in order.

    ``*_cdef.h`` files declare libbpf's API for CFFI only (with ``...`` placeholders that are not C);
    ``libbpf_cdef.h`` comes first because it holds the typedefs the others use. Every other header declares
    the project's own C helpers: CFFI reads it, and the generated C includes it.
    """
    first = INCLUDE / "libbpf_cdef.h"
    rest = sorted(p for p in INCLUDE.glob("*.h") if p != first)
    cdefs = [p for p in rest if p.name.endswith("_cdef.h")]
    return [first, *cdefs, *(p for p in rest if p not in cdefs)]


def make_builder(source_dir: Path) -> FFI:
    """The FFI builder; ``source_dir`` is ``include/`` spelled as the caller's build needs the C sources."""
    archive, version = built_libbpf()
    builder = FFI()
    headers = cdef_headers()
    for header in headers:
        builder.cdef(header.read_text())
    includes = "".join(f'#include "{h.name}"\n' for h in headers if not h.name.endswith("_cdef.h"))
    builder.set_source(
        "pybpfmap._libbpf",
        "#include <bpf/bpf.h>\n#include <bpf/libbpf.h>\n#include <bpf/btf.h>\n" + includes,
        sources=[str(source_dir / p.name) for p in sorted(INCLUDE.glob("*.c"))],
        include_dirs=[str(LIBBPF_BUILD / "include"), str(INCLUDE)],
        define_macros=[("PBM_LIBBPF_VERSION", f'"{version}"')],
        # Hidden by default: the extension exports only PyInit__libbpf, none of our helpers or libbpf.
        extra_compile_args=["-O2", "-Wall", "-Werror=implicit-function-declaration", "-fvisibility=hidden"],
        extra_objects=[str(archive)],
        libraries=["elf", "z"],
        extra_link_args=["-Wl,--exclude-libs,ALL"],
    )
    return builder


if __name__ == "__main__":
    # ffi.compile() works from its temporary directory, so the source path must be absolute here.
    make_builder(INCLUDE).compile(tmpdir=str(ROOT / "build" / "cffi"), verbose=True)
else:
    # setuptools (cffi_modules) runs from the project directory and insists on relative source paths.
    ffibuilder = make_builder(Path("include"))
