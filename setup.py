"""Build the Cython extensions; all metadata lives in pyproject.toml."""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    CFLAGS = ["/O2"]
else:
    CFLAGS = ["-O3", "-fno-strict-aliasing"]
    if os.environ.get("HERO_FAST_DEBUG"):
        CFLAGS = ["-O0", "-g3"]

EXTENSIONS = [
    Extension(
        "hero_fast._core",
        ["src/hero_fast/_core.pyx"],
        include_dirs=["src/hero_fast"],
        depends=["src/hero_fast/_wskernels.h", "src/hero_fast/_core.pxd"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "hero_fast._transport",
        ["src/hero_fast/_transport.pyx"],
        include_dirs=["src/hero_fast"],
        depends=["src/hero_fast/_core.pxd"],
        extra_compile_args=CFLAGS,
    ),
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        compiler_directives={"language_level": "3", "embedsignature": True},
        include_path=["src"],
    ),
)
