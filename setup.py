# setuptools has no pyproject.toml key for CFFI's builder; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
