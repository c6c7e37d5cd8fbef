"""What CI runs: .ci/run, the Makefile's test plumbing, the GitHub workflows and the
distribution contents check (scripts/check_dist.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = (ROOT / ".ci" / "run").is_file() and (ROOT / "Makefile").is_file()
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="needs the source checkout (.ci/, Makefile, .github/)")


def test_ci_run_exports_ci_and_runs_the_readme_test_command(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "calls"
    for tool in ("make", "redis-server"):  # record the call instead of running it
        (fake_bin / tool).write_text(f'#!/bin/sh\necho "{tool} CI=${{CI:-}} $*" >> "$RECORD"\n')
        (fake_bin / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=f"{fake_bin}{os.pathsep}{env['PATH']}", RECORD=str(record))
    out = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = record.read_text().splitlines()
    # the README's line "make test   # the whole suite (what CI runs: .ci/run)"
    readme_line = next(line for line in (ROOT / "README.md").read_text().splitlines() if "what CI runs" in line)
    tool, *args = readme_line.split("#")[0].split()
    assert calls[-1] == " ".join([tool, "CI=1", *args]) == "make CI=1 test"
    assert all(c.startswith("redis-server CI=1 ") for c in calls[:-1])  # only when no Redis answers


def make_dry_run(target: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    out = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), target],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_test_installs_system_packages_without_their_recommendations() -> None:
    recipe = make_dry_run("system-deps")
    assert "apt-get install -y -qq --no-install-recommends $missing" in recipe
    assert 'missing="$missing chromium"' in recipe


def test_make_autobahn_full_runs_every_compression_case() -> None:
    recipe = make_dry_run("autobahn-full").splitlines()[-1]
    cases = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.*,13.*"
    assert recipe.endswith(f"bash conformance/autobahn/against_echo.sh '{cases}'")


def job(workflow: str, name: str) -> str:
    """The text of one job of a workflow (its lines up to the next job)."""
    lines = (ROOT / ".github" / "workflows" / workflow).read_text().splitlines()
    start = lines.index(f"  {name}:")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  ") and lines[i][2] not in " #"),
               len(lines))
    return "\n".join(lines[start:end])


def test_the_ci_workflow_runs_what_ci_runs_with_chromium_and_python_27() -> None:
    test = job("ci.yml", "test")
    assert "container: python:${{ matrix.python }}-bookworm" in test  # Debian: the chromium package
    assert "run: bash .ci/run" in test
    assert "uses: ./.github/actions/python27" in test
    assert "node-version:" in test
    action = (ROOT / ".github" / "actions" / "python27" / "action.yml").read_text()
    assert "create-args: python=2.7 pip" in action and '>> "$GITHUB_ENV"' in action
    assert "bash conformance/autobahn/setup.sh" in action
    full = job("ci.yml", "autobahn-full")
    assert "uses: ./.github/actions/python27" in full and "run: make autobahn-full" in full
    wheel = job("ci.yml", "wheel-check")
    assert "make system-deps" in wheel and "redis-server --daemonize yes" in wheel and "run: make wheel-check" in wheel


def test_the_sdist_job_checks_every_compiled_module() -> None:
    assert "run: python scripts/check_dist.py sdist dist/*.tar.gz ." in job("wheels.yml", "sdist")


# -- scripts/check_dist.py --------------------------------------------------------------------


def source_files() -> list[str]:
    """What an sdist of this tree must carry (as check_dist.py reads the tree)."""
    pkg = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "src" / "hero_fast").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".so", ".pyc", ".c")
    ]
    tests = [p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")]
    return [*pkg, *tests, "pyproject.toml", "setup.py", "README.md", "MANIFEST.in", "CHANGELOG.md",
            "docs/configuration.md"]


def check_dist(kind: str, dist: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_dist.py"), kind, str(dist), str(ROOT)],
                          capture_output=True, text=True, timeout=60)


def write_sdist(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(f"hero_fast-0.1.0/{name}")
            tar.addfile(info, io.BytesIO(b""))
    return path


@pytest.mark.parametrize("dropped", ["src/hero_fast/_deflate.pyx", "src/hero_fast/_deflate.pxd",
                                     "src/hero_fast/_deflate.pyi", "src/hero_fast/_core.pyx"])
def test_an_sdist_without_a_compiled_modules_source_is_refused(tmp_path: Path, dropped: str) -> None:
    names = source_files()
    assert check_dist("sdist", write_sdist(tmp_path / "ok.tar.gz", names)).returncode == 0
    out = check_dist("sdist", write_sdist(tmp_path / "bad.tar.gz", [n for n in names if n != dropped]))
    assert out.returncode == 1 and dropped in out.stderr


def test_an_sdist_with_generated_c_is_refused(tmp_path: Path) -> None:
    out = check_dist("sdist", write_sdist(tmp_path / "c.tar.gz", [*source_files(), "src/hero_fast/_deflate.c"]))
    assert out.returncode == 1 and "src/hero_fast/_deflate.c" in out.stderr


def test_a_wheel_needs_every_compiled_module_with_its_stub_and_declarations(tmp_path: Path) -> None:
    modules = sorted(p.stem for p in (ROOT / "src" / "hero_fast").glob("*.pyx"))
    assert "_deflate" in modules
    names = ["hero_fast/py.typed", "hero_fast/metrics.py", "hero_fast/logs.py"]
    for mod in modules:
        names += [f"hero_fast/{mod}.pyi", f"hero_fast/{mod}.pxd", f"hero_fast/{mod}.cpython-312-x86_64-linux-gnu.so"]

    def wheel(path: Path, files: list[str]) -> Path:
        with zipfile.ZipFile(path, "w") as z:
            for name in files:
                z.writestr(name, "")
        return path

    assert check_dist("wheel", wheel(tmp_path / "ok.whl", names)).returncode == 0
    out = check_dist("wheel", wheel(tmp_path / "bad.whl", [n for n in names if "_deflate.cpython" not in n]))
    assert out.returncode == 1 and "the wheel lacks the compiled module _deflate" in out.stderr
