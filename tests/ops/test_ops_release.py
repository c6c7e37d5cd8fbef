"""Release checks: the configuration docs match the generator, the version is one
version everywhere, ``hero-fast config`` shows sources, the docs' links resolve."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hero_fast
from hero_fast.cli import main
from hero_fast.config.docs import markdown

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CONFIG_DOC = DOCS / "configuration.md"
in_checkout = pytest.mark.skipif(
    not (REPO / "pyproject.toml").is_file() or not DOCS.is_dir(),
    reason="needs the source checkout (docs/), not only the installed package",
)


@in_checkout
def test_configuration_doc_matches_the_generator() -> None:
    expected = markdown()
    actual = CONFIG_DOC.read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/configuration.md is out of date with the option table; regenerate it with\n"
        "    python -m hero_fast.config --markdown > docs/configuration.md"
    )


@in_checkout
def test_generator_output_via_the_module_is_the_same() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hero_fast.config", "--markdown"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == markdown()


@in_checkout
def test_relative_links_in_the_docs_resolve() -> None:
    pages = [*DOCS.glob("*.md"), REPO / "README.md", REPO / "CHANGELOG.md"]
    missing = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            # bench/RESULTS.md and bench/chart.png are produced by the bench suite
            if not path.exists() and not target.startswith("../bench/"):
                missing.append(f"{page.relative_to(REPO)} -> {target}")
    assert not missing, missing


def test_version_is_the_same_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert importlib.metadata.version("hero-fast") == hero_fast.__version__
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hero-fast {hero_fast.__version__}"


def test_console_script_version() -> None:
    script = shutil.which("hero-fast", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the hero-fast console script is not installed next to this interpreter")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"hero-fast {hero_fast.__version__}"


def test_config_command_shows_the_ops_options_and_their_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ops.py").write_text('DEFAULT = {"metrics": {"path": "/internal/metrics"}}\n')
    monkeypatch.setenv("HERO_FAST__logging__json", "true")
    assert main(["config", "--project", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "metrics.enabled = false  # default" in lines
    assert 'metrics.path = "/internal/metrics"  # config/ops.py' in lines
    assert "logging.json = true  # env HERO_FAST__logging__json" in lines
    assert 'logging.level = "info"  # default' in lines
