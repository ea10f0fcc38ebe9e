"""pybpfmap's version, in one place: the package metadata is built from it (pyproject.toml's dynamic version)."""

__version__ = "0.1.0"
