#!/usr/bin/env python3
"""Check what a built sdist or wheel carries, against the source tree it was built from.

    check_dist.py sdist SDIST.tar.gz SOURCE_DIR
    check_dist.py wheel WHEEL.whl SOURCE_DIR

sdist: every file of the package source (src/hero_fast/**, so each compiled module's
.pyx, .pxd, .pyi and header), the build files, README, CHANGELOG, the configuration
reference and every tests/**/test_*.py; no C generated from a .pyx, no binaries.
wheel: for every src/hero_fast/*.pyx its compiled module, .pyi and .pxd; py.typed, the
metrics and logging modules; no .c file.

Used by scripts/wheel_check.sh (make wheel-check) and the sdist job of
.github/workflows/wheels.yml. Exit status 1 with what is wrong, 0 when it is all there.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

BUILD_FILES = {"pyproject.toml", "setup.py", "README.md", "MANIFEST.in", "CHANGELOG.md", "docs/configuration.md"}
BINARY = (".so", ".pyd", ".pyc")


def compiled_modules(src: Path) -> list[str]:
    return sorted(p.stem for p in (src / "src" / "hero_fast").glob("*.pyx"))


def check_sdist(sdist: Path, src: Path) -> list[str]:
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    inside = {n.split("/", 1)[1] for n in names if "/" in n}
    pkg = src / "src" / "hero_fast"
    expected = {
        p.relative_to(src).as_posix()
        for p in pkg.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in BINARY
        and not (p.suffix == ".c" and p.with_suffix(".pyx").exists())  # written by the build itself
    }
    expected |= BUILD_FILES
    expected |= {p.relative_to(src).as_posix() for p in (src / "tests").rglob("test_*.py")}
    problems = []
    missing = sorted(expected - inside)
    if missing:
        problems.append(f"the sdist lacks files of the source tree: {missing}")
    generated = sorted(
        n for n in inside if (n.endswith(".c") and (n[:-2] + ".pyx") in inside) or n.endswith(BINARY)
    )
    if generated:
        problems.append(f"the sdist carries generated or compiled files: {generated}")
    for kind in (".pyx", ".pxd", ".pyi", ".h"):
        print(f"  {kind:5} {sorted(n.rsplit('/', 1)[1] for n in inside if n.endswith(kind))}")
    print(f"  {len(inside)} files in all; compiled modules of the source: {compiled_modules(src)}")
    return problems


def check_wheel(wheel: Path, src: Path) -> list[str]:
    names = set(zipfile.ZipFile(wheel).namelist())
    need = {"hero_fast/py.typed", "hero_fast/metrics.py", "hero_fast/logs.py"}
    problems = []
    for mod in compiled_modules(src):
        need |= {f"hero_fast/{mod}.pyi", f"hero_fast/{mod}.pxd"}
        if not any(n.startswith(f"hero_fast/{mod}.") and n.endswith((".so", ".pyd")) for n in names):
            problems.append(f"the wheel lacks the compiled module {mod}")
    missing = sorted(need - names)
    if missing:
        problems.append(f"the wheel lacks {missing}")
    c_files = sorted(n for n in names if n.endswith(".c"))
    if c_files:
        problems.append(f"the wheel carries C sources: {c_files}")
    print(f"  {len(names)} files in all; compiled modules of the source: {compiled_modules(src)}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("sdist", "wheel"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, dist, src = argv[0], Path(argv[1]), Path(argv[2])
    problems = (check_sdist if kind == "sdist" else check_wheel)(dist, src)
    for problem in problems:
        print(f"{kind} contents: {problem}", file=sys.stderr)
    if not problems:
        print(f"{kind} contents: OK ({dist.name})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
