"""hero-fast new / --version / config / serve argument checks (no running server needed)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import hero_fast
from hero_fast.cli import main, scaffold
from hero_fast.config import load_config

EXPECTED_FILES = {
    "README.md",
    ".gitignore",
    "actions/random_number.py",
    "actions/echo.py",
    "config/api.py",
    "public/index.html",
    "pytest.ini",
    "tests/test_actions.py",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("HERO_FAST"):
            monkeypatch.delenv(name)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# -- --version --------------------------------------------------------------------------------


def test_version_in_process(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hero-fast {hero_fast.__version__}"


def test_version_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "hero_fast.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"hero-fast {hero_fast.__version__}"


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("hero-fast")
    if not script.exists():
        pytest.skip("the hero-fast console script is not installed next to this interpreter")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("hero-fast ")


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


# -- new --------------------------------------------------------------------------------------


def test_templates_ship_with_the_package():
    root = resources.files("hero_fast").joinpath("scaffold")
    assert root.is_dir()
    assert root.joinpath("public", "index.html").is_file()


def test_new_creates_the_project_tree(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["new", str(target)]) == 0
    assert files_under(target) == EXPECTED_FILES
    out = capsys.readouterr().out
    assert "hero-fast serve" in out and "actions/echo.py" in out
    # the project name is filled in, no template token or suffix remains
    for rel in EXPECTED_FILES:
        text = (target / rel).read_text()
        assert "__PROJECT_NAME__" not in text, rel
    assert "# demo" in (target / "README.md").read_text()
    assert not list(target.rglob("*.tmpl"))


def test_new_python_files_are_valid_and_define_the_example_actions(tmp_path):
    target = tmp_path / "demo"
    scaffold(target)
    for path in target.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    names = set()
    for path in (target / "actions").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "name":
                        names.add(ast.literal_eval(stmt.value))
    assert names == {"randomNumber", "echo"}
    echo = (target / "actions" / "echo.py").read_text()
    assert "Input(required=True)" in echo


def test_new_config_is_loaded_by_load_config(tmp_path):
    target = tmp_path / "chatapp"
    scaffold(target)
    config, sources = load_config(target, environ={})
    assert config["general"]["welcomeMessage"] == "Hello! Welcome to chatapp"
    assert sources["general.welcomeMessage"] == "config/api.py"
    assert sources["general.developmentMode"] == "config/api.py [development]"
    config, sources = load_config(target, env="production", environ={})
    assert sources["general.developmentMode"] == "default"


def test_new_chat_page_uses_the_generated_client(tmp_path):
    target = tmp_path / "demo"
    scaffold(target)
    page = (target / "public" / "index.html").read_text()
    for needle in (
        "/javascript/actionheroClient.js",  # written by the server at boot
        "new ActionheroClient(",
        'const ROOM = "defaultRoom"',
        "client.roomAdd(ROOM)",
        "client.say(ROOM",
        'fetch("/api/status")',  # the status action over HTTP
    ):
        assert needle in page, needle
    assert "innerHTML" not in page  # messages are rendered as text


def test_new_into_an_empty_existing_folder(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    assert main(["new", str(target)]) == 0
    assert files_under(target) == EXPECTED_FILES


def test_new_creates_missing_parents(tmp_path):
    target = tmp_path / "a" / "b" / "app"
    assert main(["new", str(target)]) == 0
    assert (target / "config" / "api.py").is_file()


def test_new_refuses_a_non_empty_folder(tmp_path, capsys):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["new", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and str(target) in err
    assert files_under(target) == {"keep.txt"}


def test_new_refuses_a_hidden_file_too(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / ".git").mkdir()
    assert main(["new", str(target)]) == 2
    assert not (target / "actions").exists()


def test_new_refuses_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["new", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_new_name_is_made_safe_for_python_and_html(tmp_path):
    target = tmp_path / 'we"ird<name>'
    scaffold(target)
    compile((target / "config" / "api.py").read_text(), "api.py", "exec")
    assert "<name>" not in (target / "public" / "index.html").read_text()


# -- serve: argument checks that need no server ----------------------------------------------


def test_workers_without_redis_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["serve", "--project", str(tmp_path), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs a Redis URL" in err
    assert "--redis-url" in err and "HERO_FAST_REDIS_URL" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--port", "70000"], "--port must be from 0 to 65535"),
        (["--certfile", "/no/such/cert.pem"], "--certfile /no/such/cert.pem: no such file"),
    ],
)
def test_serve_refuses_bad_arguments(tmp_path, capsys, args, message):
    assert main(["serve", "--project", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_a_missing_project(tmp_path, capsys):
    assert main(["serve", "--project", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_serve_reports_a_config_error(tmp_path, capsys):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ws.py").write_text(
        'DEFAULT = {"servers": {"websocket": {"server": {"transformer": "engine.io"}}}}'
    )
    assert main(["serve", "--project", str(tmp_path), "--workers", "2", "--redis-url", "redis://x"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "transformer" in err and "config/ws.py" in err


# -- config -----------------------------------------------------------------------------------


def test_config_command_shows_values_and_sources(tmp_path, capsys, monkeypatch):
    scaffold(tmp_path / "demo")
    monkeypatch.setenv("HERO_FAST_PORT", "8123")
    assert main(["config", "--project", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert 'general.welcomeMessage = "Hello! Welcome to demo"  # config/api.py' in out
    assert "servers.web.port = 8123  # env HERO_FAST_PORT" in out
    assert 'servers.websocket.server.pathname = "/primus"  # default' in out


def test_config_command_in_the_current_folder(tmp_path, capsys, monkeypatch):
    scaffold(tmp_path / "demo")
    monkeypatch.chdir(tmp_path / "demo")
    assert main(["config", "--env", "production", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"env": "cli --env"' in out and '"general.serverName": "config/api.py"' in out


def test_config_never_prints_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "api.py").write_text(
        'DEFAULT = {"redis_url": "redis://app:hunter2@127.0.0.1:6379/0",\n'
        '           "cluster": {"secret": "s3cret-0123456789ab", "previousSecret": "old-0123456789abcdef"},\n'
        '           "publish": {"secret": "publish-0123456789ab"}}\n'
    )
    for flags in ([], ["--json"]):
        assert main(["config", "--project", str(tmp_path), *flags]) == 0
        out = capsys.readouterr().out
        for secret in ("hunter2", "s3cret-0123456789ab", "old-0123456789abcdef", "publish-0123456789ab"):
            assert secret not in out
        assert "redis://app:***@127.0.0.1:6379/0" in out and "[REDACTED]" in out
