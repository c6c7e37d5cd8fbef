"""hero-fast new gives a project whose own tests pass; hero-fast generate writes an action,
an initializer or middleware with a test of it that passes too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hero_fast.cli import main
from hero_fast.generate import GenerateError, names


def project_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    """The project's own test suite, run as its developer would (``python -m pytest``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERO_FAST", "PYTEST"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_new_project_and_everything_generated_into_it_pass_their_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "demo"
    assert main(["new", str(project)]) == 0
    for folder in ("actions", "config", "initializers", "middleware", "public", "tests"):
        assert (project / folder).is_dir(), folder
    assert (project / "pytest.ini").is_file()
    commands = [
        ["generate", "action", "createUser"],
        ["generate", "initializer", "database"],
        ["generate", "middleware", "auth"],
        ["generate", "middleware", "audit", "--middleware-kind", "connection"],
        ["generate", "middleware", "no-shouting", "--middleware-kind", "chat"],
    ]
    for command in commands:
        assert main([*command, "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "wrote actions/create_user.py" in out and "wrote tests/test_action_create_user.py" in out
    assert "wrote middleware/no_shouting.py" in out
    result = project_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout and "warning" not in result.stdout, result.stdout


def test_generate_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "action", "ping", "--project", str(tmp_path)]) == 0
    before = (tmp_path / "actions" / "ping.py").read_text()
    assert main(["generate", "action", "ping", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"hero-fast: error: {tmp_path / 'actions' / 'ping.py'} already exists; nothing was written"
    assert (tmp_path / "actions" / "ping.py").read_text() == before


def test_generated_code_is_what_the_name_says(tmp_path: Path) -> None:
    assert main(["generate", "action", "getUser", "--project", str(tmp_path)]) == 0
    text = (tmp_path / "actions" / "get_user.py").read_text()
    assert "class GetUser(Action):" in text and 'name = "getUser"' in text


@pytest.mark.parametrize("bad", ["1abc", "", "a b", "x/y", "../up"])
def test_unusable_names_are_refused(bad: str) -> None:
    with pytest.raises(GenerateError):
        names(bad)


def test_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["generate", "widget", "x", "--project", str(tmp_path)])
    assert info.value.code == 2
