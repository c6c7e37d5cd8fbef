"""Mistakes in a project are one line naming the file (exit status 2); things that would
silently do nothing warn once; unexpected exceptions reach clients as ``internal error
(ref X)`` with the text in the log line of the same reference."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from _project import write

from hero_fast.app import Api
from hero_fast.cli import main
from hero_fast.config import ConfigError, ConfigWarning
from hero_fast.project import ProjectWarning
from hero_fast.testing import TestApi

INTERNAL = re.compile(r"internal error \(ref ([0-9a-f]{8})\)")

ECHO = """
from hero_fast.actions import Action

class Echo(Action):
    name = "echo"
    def run(self, data):
        return {"ok": True}
"""


def serve_error(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``hero-fast serve`` on ``project``; it must exit 2 before serving: stderr."""
    assert main(["serve", "--project", str(project), "--port", "0", *args]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"actions/bad.py": "def broken(:\n    pass\n"}, r"actions/bad\.py:1: SyntaxError: .+"),
        ({"actions/bad.py": "import os\nraise RuntimeError('no DB')\n"}, r"actions/bad\.py:2: RuntimeError: no DB"),
        ({"actions/a.py": ECHO, "actions/b.py": ECHO}, r"actions/b\.py: Echo: action 'echo' version 1 is already "
         r"registered \(by actions/a\.py\)"),
        ({"initializers/i.py": "from hero_fast import Initializer\nclass I(Initializer):\n    def start(self, api):\n"
          "        raise OSError('disk full')\n"}, r"initializers/i\.py:4: OSError: disk full \(in I\.start\)"),
        ({"middleware/m.py": "1/0\n"}, r"middleware/m\.py:1: ZeroDivisionError: division by zero"),
        ({"config/routes.py": "DEFAULT = {'routes': {'get': [{'path': '/x/:id', 'action': 'nope'}]}}\n"},
         r"config/routes\.py: route GET /x/:id names action 'nope', which does not exist"),
    ],
    ids=["syntax error", "import error", "duplicate action", "initializer start", "middleware import", "route"],
)
def test_project_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], expected: str
) -> None:
    write(tmp_path, files)
    err = serve_error(tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert re.fullmatch(r"hero-fast: error: " + expected, lines[0]), lines[0]


def test_a_bad_route_table_is_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"config/routes.py": "DEFAULT = {'routes': {'get': [{'path': 'users', 'action': 'x'}]}}\n"})
    err = serve_error(tmp_path, capsys).strip()
    assert err == (
        "hero-fast: configuration error: invalid configuration: routes get[0]: path must be a string starting "
        "with '/', got 'users' (from config/routes.py)"
    )


def test_a_missing_tls_file_names_the_option_and_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.pem"
    write(tmp_path, {"config/tls.py": f"DEFAULT = {{'servers': {{'web': {{'certfile': {str(missing)!r}}}}}}}\n"})
    err = serve_error(tmp_path, capsys).strip()
    assert err == (
        f"hero-fast: configuration error: servers.web.certfile {missing}: No such file or directory "
        "(from config/tls.py)"
    )


@pytest.mark.parametrize(
    ("config", "env", "warning"),
    [
        ("DEFAULTS = {'general': {'serverName': 'x'}}\n", None,
         "config/api.py: DEFAULTS is not read (did you mean DEFAULT?)"),
        ("DEFAULT = {}\nprodution = {'servers': {'web': {'port': 1}}}\n", None,
         "config/api.py: section 'prodution' looks like a misspelling of 'production'; it only applies with "
         "--env prodution"),
        ("DEFAULT = {}\nproduction = {'servers': {'web': {'port': 1}}}\n", "prodution",
         "no config module has a section for environment 'prodution' (from cli --env) (did you mean 'production'?); "
         "sections found: production"),
    ],
    ids=["DEFAULTS", "misspelled section", "misspelled --env"],
)
def test_config_that_would_do_nothing_warns(tmp_path: Path, config: str, env: str | None, warning: str) -> None:
    write(tmp_path, {"config/api.py": config})
    with pytest.warns(ConfigWarning) as record:
        Api(tmp_path, env=env)
    assert [str(w.message) for w in record] == [warning]


def test_warnings_print_one_line_each_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"config/api.py": "DEFAULTS = {'general': {}}\n", "actions/bad.py": "def broken(:\n"})
    err = serve_error(tmp_path, capsys)
    assert err.splitlines()[0] == "hero-fast: warning: config/api.py: DEFAULTS is not read (did you mean DEFAULT?)"


def test_an_action_class_without_a_name_warns(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "actions/a.py": """
                from hero_fast.actions import Action

                class Base(Action):           # subclassed below: a base, no warning
                    description = "shared"

                class Real(Base):
                    name = "real"
                    def run(self, data):
                        return {}

                class Forgotten(Action):
                    def run(self, data):
                        return {}
            """
        },
    )
    with pytest.warns(ProjectWarning) as record:
        Api(tmp_path).load()
    assert [str(w.message) for w in record] == [
        'actions/a.py: Forgotten is an Action without a `name`, so it is not registered (give it name = "..."; '
        "a base class is skipped only when an action subclasses it)"
    ]


async def test_run_returning_a_non_dict_warns_once_per_action(caplog: pytest.LogCaptureFixture) -> None:
    from hero_fast.actions import Action

    class Listy(Action):
        name = "listy"

        def run(self, data):  # type: ignore[no-untyped-def]
            return [1, 2]

    async with TestApi() as t:
        t.actions.register(Listy)
        with caplog.at_level(logging.WARNING, logger="hero_fast.actions"):
            for _ in range(3):
                assert await t.run_action("listy") == {}
    warned = [r.getMessage() for r in caplog.records if "listy" in r.getMessage()]
    assert warned == [
        "action 'listy': run() returned list, which is ignored; return a dict (merged into the response) or "
        "None (warned once per action)"
    ]


async def test_unexpected_exceptions_reach_clients_as_internal_error_with_a_reference(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        {
            "actions/boom.py": """
                from hero_fast.actions import Action, ActionError

                class Boom(Action):
                    name = "boom"
                    def run(self, data):
                        raise RuntimeError("password=hunter2 in /srv/app/db.py")

                class Refuse(Action):
                    name = "refuse"
                    def run(self, data):
                        raise ActionError("not today", 409)
            """,
            "middleware/chat.py": """
                from hero_fast.middleware import ChatMiddleware

                def explode(connection, room, payload):
                    raise KeyError("secret-key-name")

                m = ChatMiddleware("explode", say=explode)
            """,
        },
    )
    async with TestApi(tmp_path) as t:
        with caplog.at_level(logging.ERROR):
            client = t.connect()
            ws_error = (await client.action("boom"))["error"]
            http = await t.http("GET", "/api/boom")
            await client.room_add("defaultRoom")
            chat_error = (await client.say("defaultRoom", "hi"))["error"]
            refused = await t.http("GET", "/api/refuse")
    assert (refused.status, refused.json()["error"]) == (409, "not today")  # meant for the client: as written
    assert http.status == 500
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    for text in (ws_error, http.json()["error"], chat_error.removeprefix("Error: ")):
        match = INTERNAL.fullmatch(text)
        assert match, text
        assert match.group(1) in log_text  # the reference leads to the log line ...
    assert "hunter2" not in ws_error + http.json()["error"] + chat_error
    assert "hunter2" in log_text and "secret-key-name" in log_text  # ... which has the text


def test_config_errors_still_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"config/api.py": "DEFAULT = {'general': {'simultaneousActions': 0}}\n"})
    with pytest.raises(ConfigError):
        Api(tmp_path)
    assert serve_error(tmp_path, capsys) == (
        "hero-fast: configuration error: invalid configuration: general.simultaneousActions must be an integer "
        ">= 1, got int 0 (from config/api.py)\n"
    )
