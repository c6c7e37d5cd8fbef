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

# permessage-deflate uses zlib's C API (exact output caps). Linux and macOS have the
# system libz (on the manylinux allow-list); on Windows point ZLIB_ROOT at a zlib build
# (include/ and lib/zlib.lib, e.g. from vcpkg).
ZLIB_INCLUDE: list[str] = []
ZLIB_LIBDIRS: list[str] = []
ZLIB_LIBS = ["z"]
if os.environ.get("ZLIB_ROOT"):
    ZLIB_INCLUDE = [os.path.join(os.environ["ZLIB_ROOT"], "include")]
    ZLIB_LIBDIRS = [os.path.join(os.environ["ZLIB_ROOT"], "lib")]
if sys.platform == "win32":
    ZLIB_LIBS = [os.environ.get("ZLIB_LIBNAME", "zlib")]

EXTENSIONS = [
    Extension(
        "hero_fast._deflate",
        ["src/hero_fast/_deflate.pyx"],
        include_dirs=["src/hero_fast", *ZLIB_INCLUDE],
        library_dirs=ZLIB_LIBDIRS,
        libraries=ZLIB_LIBS,
        depends=["src/hero_fast/_deflate.pxd"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "hero_fast._core",
        ["src/hero_fast/_core.pyx"],
        include_dirs=["src/hero_fast", *ZLIB_INCLUDE],
        library_dirs=ZLIB_LIBDIRS,
        libraries=ZLIB_LIBS,
        depends=["src/hero_fast/_wskernels.h", "src/hero_fast/_core.pxd", "src/hero_fast/_deflate.pxd"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "hero_fast._transport",
        ["src/hero_fast/_transport.pyx"],
        include_dirs=["src/hero_fast", *ZLIB_INCLUDE],
        library_dirs=ZLIB_LIBDIRS,
        libraries=ZLIB_LIBS,
        depends=["src/hero_fast/_core.pxd", "src/hero_fast/_deflate.pxd"],
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
