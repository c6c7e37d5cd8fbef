"""hero_fast.config.load_config: defaults < config files < env section < env vars < overrides."""

from __future__ import annotations

import copy
import textwrap
import warnings
from pathlib import Path

import pytest

from hero_fast.config import (
    DEFAULTS,
    ConfigError,
    ConfigWarning,
    config_value,
    flatten,
    load_config,
)

NO_ENV: dict[str, str] = {}


def write(project: Path, name: str, text: str) -> Path:
    path = project / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(project: Path | None = None, **kwargs):
    kwargs.setdefault("environ", NO_ENV)
    return load_config(project, **kwargs)


# -- defaults --------------------------------------------------------------------------------


def test_defaults_without_project():
    config, sources = load()
    expected = copy.deepcopy(DEFAULTS)
    assert config == expected
    assert config["env"] == "development"
    assert set(sources) == set(flatten(config))
    assert set(sources.values()) == {"default"}


def test_default_values_follow_actionhero_names():
    config, _ = load()
    g, web, ws = config["general"], config["servers"]["web"], config["servers"]["websocket"]
    assert config["redis_url"] is None
    assert g["serverName"] == "hero-fast"
    assert g["apiVersion"] == "0.0.1"
    assert g["welcomeMessage"] == "Hello! Welcome to the actionhero api"
    assert g["simultaneousActions"] == 5
    assert g["startingChatRooms"] == {"defaultRoom": {}, "anotherRoom": {}}
    assert (g["maxRoomsPerConnection"], g["maxRoomNameLength"], g["maxMessageIdLength"]) == (20, 256, 256)
    assert (g["maxJsonDepth"], g["maxFileSize"], g["shutdownTimeout"]) == (64, 1048576, 10)
    assert g["paths"] == {
        "action": ["actions"],
        "initializer": ["initializers"],
        "middleware": ["middleware"],
        "public": ["public"],
        "config": ["config"],
    }
    assert g["developmentMode"] is False
    assert (web["enabled"], web["host"], web["port"]) == (True, "127.0.0.1", 8080)
    assert (web["urlPathForActions"], web["urlPathForFiles"], web["rootEndpointType"]) == (
        "api",
        "public",
        "file",
    )
    assert web["flatFileCacheDuration"] == 60
    assert web["fingerprint"] == {
        "cookieKey": "sessionID",
        "toSetCookie": True,
        "expire": 3600,
        "httpOnly": True,
        "sameSite": "Lax",
        "secure": False,
    }
    assert web["httpHeaders"]["X-Powered-By"] == "hero-fast"
    assert web["httpHeaders"]["Access-Control-Allow-Origin"] == "*"
    assert web["httpHeaders"]["Access-Control-Allow-Headers"] == "Content-Type"
    assert (web["maxBodySize"], web["keepAliveTimeout"], web["returnErrorCodes"]) == (1048576, 15, True)
    assert web["metadataOptions"] == {"serverInformation": True, "requesterInformation": True}
    assert (web["certfile"], web["keyfile"]) == (None, None)
    assert (ws["enabled"], ws["clientUrl"], ws["clientJsPath"], ws["clientJsName"]) == (
        True,
        "window.location.origin",
        "javascript/",
        "actionheroClient",
    )
    assert ws["destroyClientsOnShutdown"] is False
    server = ws["server"]
    assert server == {
        "authorization": None,
        "pathname": "/primus",
        "parser": "JSON",
        "transformer": "websockets",
        "plugin": {},
        "timeout": 35000,
        "pingInterval": 30000,
        "origins": "*",
        "methods": ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
        "credentials": True,
        "maxAge": "30 days",
        "headers": False,
        "exposed": False,
    }
    client = ws["client"]
    assert client["reconnect"] == {"max": None, "min": 500, "retries": 10, "factor": 2}
    assert (client["apiPath"], client["timeout"], client["ping"], client["pong"]) == (
        "/api",
        10000,
        25000,
        10000,
    )
    assert client["strategy"] == ["online", "timeout", "disconnect"]
    assert (client["manual"], client["websockets"], client["network"]) == (False, True, True)
    assert (client["transport"], client["queueSize"]) == ({}, None)
    assert (ws["maxMessageSize"], ws["maxFragments"], ws["handshakeTimeout"], ws["closeTimeout"]) == (
        1048576,
        1024,
        10,
        5,
    )
    assert (ws["maxRequestLine"], ws["maxHeaders"], ws["maxHeaderBytes"]) == (8192, 100, 16384)
    assert (ws["writeBufferHigh"], ws["writeBufferLow"]) == (262144, 65536)


def test_load_does_not_mutate_defaults(tmp_path):
    before = copy.deepcopy(DEFAULTS)
    write(tmp_path, "web.py", 'DEFAULT = {"servers": {"web": {"httpHeaders": {"X": "y"}}}}')
    config, _ = load(tmp_path)
    config["general"]["startingChatRooms"]["mine"] = {}
    assert DEFAULTS == before


def test_project_without_config_folder_is_defaults(tmp_path):
    config, sources = load(tmp_path)
    assert config == load()[0]
    assert set(sources.values()) == {"default"}


# -- precedence ------------------------------------------------------------------------------


def test_precedence_chain_with_sources(tmp_path):
    write(
        tmp_path,
        "web.py",
        """
        DEFAULT = {"servers": {"web": {"port": 9000, "host": "127.0.0.2", "keepAliveTimeout": 3}}}
        production = {"servers": {"web": {"port": 9100, "host": "127.0.0.3"}}}
    """,
    )
    key = "servers.web.port"

    config, sources = load(tmp_path)
    assert config_value(config, key) == 9000 and sources[key] == "config/web.py"
    assert sources["servers.web.maxBodySize"] == "default"

    config, sources = load(tmp_path, env="production")
    assert config_value(config, key) == 9100 and sources[key] == "config/web.py [production]"
    assert config["servers"]["web"]["keepAliveTimeout"] == 3
    assert sources["servers.web.keepAliveTimeout"] == "config/web.py"

    environ = {"HERO_FAST_PORT": "9200"}
    config, sources = load(tmp_path, env="production", environ=environ)
    assert config_value(config, key) == 9200 and sources[key] == "env HERO_FAST_PORT"
    assert sources["servers.web.host"] == "config/web.py [production]"

    config, sources = load(tmp_path, env="production", environ=environ, overrides={key: 9300})
    assert config_value(config, key) == 9300 and sources[key] == "cli --port"
    assert set(sources) == set(flatten(config))


def test_environment_from_hero_fast_env(tmp_path):
    write(
        tmp_path,
        "api.py",
        """
        DEFAULT = {"general": {"serverName": "base"}}
        test = {"general": {"serverName": "testing"}}
        production = {"general": {"serverName": "prod"}}
    """,
    )
    config, sources = load(tmp_path, environ={"HERO_FAST_ENV": "test"})
    assert config["general"]["serverName"] == "testing"
    assert config["env"] == "test" and sources["env"] == "env HERO_FAST_ENV"
    # the env argument (the CLI's --env) wins over HERO_FAST_ENV
    config, sources = load(tmp_path, env="production", environ={"HERO_FAST_ENV": "test"})
    assert config["general"]["serverName"] == "prod"
    assert config["env"] == "production" and sources["env"] == "cli --env"
    config, sources = load(tmp_path)
    assert config["general"]["serverName"] == "base"
    assert config["env"] == "development" and sources["env"] == "default"


def test_files_merge_in_sorted_order_and_env_sections_come_after_every_default(tmp_path):
    write(
        tmp_path,
        "b_web.py",
        """
        DEFAULT = {"general": {"serverName": "from b", "apiVersion": "2"}}
    """,
    )
    write(
        tmp_path,
        "a_api.py",
        """
        DEFAULT = {"general": {"serverName": "from a", "apiVersion": "1", "simultaneousActions": 7}}
        production = {"general": {"apiVersion": "prod a"}}
    """,
    )
    config, sources = load(tmp_path)
    assert config["general"]["serverName"] == "from b"  # b_web.py sorts after a_api.py
    assert config["general"]["simultaneousActions"] == 7  # deep merge keeps a's other keys
    assert sources["general.serverName"] == "config/b_web.py"
    assert sources["general.simultaneousActions"] == "config/a_api.py"
    config, sources = load(tmp_path, env="production")
    # an env-specific section beats every file's DEFAULT
    assert config["general"]["apiVersion"] == "prod a"
    assert sources["general.apiVersion"] == "config/a_api.py [production]"


def test_private_modules_and_other_files_are_skipped(tmp_path):
    write(tmp_path, "_helpers.py", 'DEFAULT = {"general": {"serverName": "private"}}')
    write(tmp_path, "notes.txt", "not python")
    write(
        tmp_path,
        "api.py",
        """
        from pathlib import Path   # module-level names other than DEFAULT/<env> are ignored
        HERE = Path(__file__).parent
        DEFAULT = {"general": {"apiVersion": "3"}}
    """,
    )
    config, _ = load(tmp_path)
    assert config["general"]["serverName"] == "hero-fast"
    assert config["general"]["apiVersion"] == "3"


def test_deep_merge_keeps_sibling_keys(tmp_path):
    write(tmp_path, "web.py", 'DEFAULT = {"servers": {"web": {"fingerprint": {"cookieKey": "sid"}}}}')
    config, sources = load(tmp_path)
    fp = config["servers"]["web"]["fingerprint"]
    assert fp["cookieKey"] == "sid" and fp["expire"] == 3600 and fp["httpOnly"] is True
    assert sources["servers.web.fingerprint.cookieKey"] == "config/web.py"
    assert sources["servers.web.fingerprint.expire"] == "default"


def test_map_options_are_replaced_whole(tmp_path):
    write(
        tmp_path,
        "api.py",
        """
        DEFAULT = {
            "general": {"startingChatRooms": {"lobby": {}}},
            "servers": {"web": {"httpHeaders": {"X-Powered-By": "me"}}},
        }
    """,
    )
    config, sources = load(tmp_path)
    assert config["general"]["startingChatRooms"] == {"lobby": {}}
    assert config["servers"]["web"]["httpHeaders"] == {"X-Powered-By": "me"}
    assert sources["servers.web.httpHeaders"] == "config/api.py"
    assert "servers.web.httpHeaders.X-Powered-By" not in sources


def test_section_may_be_a_function_of_the_config_so_far(tmp_path):
    write(
        tmp_path,
        "web.py",
        """
        DEFAULT = {"servers": {"web": lambda config: {"port": config["servers"]["web"]["port"] + 1}}}
        production = lambda config: {"general": {"serverName": config["general"]["serverName"] + "-prod"}}
    """,
    )
    config, sources = load(tmp_path, env="production")
    assert config["servers"]["web"]["port"] == 8081
    assert config["general"]["serverName"] == "hero-fast-prod"
    assert sources["general.serverName"] == "config/web.py [production]"


def test_callable_leaf_is_kept_as_a_value(tmp_path):
    write(
        tmp_path,
        "websocket.py",
        """
        def authorize(request):
            return True
        DEFAULT = {"servers": {"websocket": {"server": {"authorization": authorize}}}}
    """,
    )
    config, _ = load(tmp_path)
    hook = config["servers"]["websocket"]["server"]["authorization"]
    assert callable(hook) and hook.__name__ == "authorize"


def test_a_broken_config_file_names_itself(tmp_path):
    write(tmp_path, "web.py", "DEFAULT = {'servers': 1/0}")
    with pytest.raises(ConfigError, match=r"config/web.py.*ZeroDivisionError"):
        load(tmp_path)


def test_a_section_that_is_not_a_dict_is_an_error(tmp_path):
    write(tmp_path, "web.py", "DEFAULT = {'servers': {'web': 8080}}")
    with pytest.raises(ConfigError, match=r"^config/web\.py: servers\.web must be a dict"):
        load(tmp_path)
    with pytest.raises(ConfigError, match=r"^env HERO_FAST__servers: servers must be a dict"):
        load(environ={"HERO_FAST__servers": "1"})


def test_a_failing_section_function_names_its_file(tmp_path):
    write(tmp_path, "web.py", "production = {'servers': {'web': lambda config: config['nope']}}")
    load(tmp_path)  # not selected
    with pytest.raises(
        ConfigError,
        match=r"config/web\.py \[production\]: the function given for servers\.web failed: KeyError",
    ):
        load(tmp_path, env="production")


def test_unknown_key_in_a_known_section_warns_with_a_suggestion(tmp_path):
    write(tmp_path, "web.py", 'DEFAULT = {"servers": {"web": {"prot": 1}}, "genral": {"x": 1}}')
    with pytest.warns(ConfigWarning) as record:
        config, sources = load(tmp_path)
    messages = [str(w.message) for w in record]
    assert any("servers.web.prot" in m and "'port'" in m and "config/web.py" in m for m in messages)
    assert any("'genral'" in m and "'general'" in m for m in messages)
    # kept (not an error), with a source
    assert config["servers"]["web"]["prot"] == 1
    assert sources["servers.web.prot"] == "config/web.py"
    assert sources["genral.x"] == "config/web.py"


def test_application_sections_are_kept_silently(tmp_path):
    write(tmp_path, "app.py", 'DEFAULT = {"myPlugin": {"apiKey": "k", "retries": {"max": 3}}}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config, sources = load(tmp_path)
    assert config["myPlugin"] == {"apiKey": "k", "retries": {"max": 3}}
    assert sources["myPlugin.retries.max"] == "config/app.py"
    assert set(sources) == set(flatten(config))


def test_env_cannot_be_set_from_a_file(tmp_path):
    write(tmp_path, "api.py", 'DEFAULT = {"env": "production"}')
    with pytest.warns(ConfigWarning, match="HERO_FAST_ENV"):
        config, _ = load(tmp_path)
    assert config["env"] == "development"


def test_config_folder_can_be_moved_by_overrides(tmp_path):
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "web.py").write_text('DEFAULT = {"servers": {"web": {"port": 7000}}}')
    write(tmp_path, "web.py", 'DEFAULT = {"servers": {"web": {"port": 6000}}}')
    assert load(tmp_path)[0]["servers"]["web"]["port"] == 6000
    config, _ = load(tmp_path, overrides={"general.paths.config": ["settings"]})
    assert config["servers"]["web"]["port"] == 7000


# -- env vars --------------------------------------------------------------------------------


def test_named_env_vars():
    config, sources = load(
        environ={
            "HERO_FAST_HOST": "0.0.0.0",
            "HERO_FAST_PORT": "8123",
            "HERO_FAST_REDIS_URL": "redis://r:6379/1",
        }
    )
    assert config["servers"]["web"]["host"] == "0.0.0.0"
    assert config["servers"]["web"]["port"] == 8123
    assert config["redis_url"] == "redis://r:6379/1"
    assert sources["servers.web.host"] == "env HERO_FAST_HOST"
    assert sources["servers.web.port"] == "env HERO_FAST_PORT"
    assert sources["redis_url"] == "env HERO_FAST_REDIS_URL"


def test_empty_named_env_vars_are_ignored():
    config, sources = load(environ={"HERO_FAST_PORT": "", "HERO_FAST_REDIS_URL": "", "HERO_FAST_ENV": ""})
    assert config["servers"]["web"]["port"] == 8080 and config["redis_url"] is None
    assert config["env"] == "development"
    assert set(sources.values()) == {"default"}


def test_bad_port_env_var():
    with pytest.raises(ConfigError, match=r"HERO_FAST_PORT.*'eighty'"):
        load(environ={"HERO_FAST_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"servers.web.port.*0 to 65535.*env HERO_FAST_PORT"):
        load(environ={"HERO_FAST_PORT": "70000"})


@pytest.mark.parametrize(
    ("name", "raw", "key", "value"),
    [
        ("HERO_FAST__servers__web__port", "8081", "servers.web.port", 8081),
        ("HERO_FAST__servers__web__host", "0.0.0.0", "servers.web.host", "0.0.0.0"),  # not JSON: a string
        ("HERO_FAST__general__developmentMode", "true", "general.developmentMode", True),
        ("HERO_FAST__general__apiVersion", '"2"', "general.apiVersion", "2"),  # JSON string
        (
            "HERO_FAST__servers__websocket__client__reconnect__max",
            "null",
            "servers.websocket.client.reconnect.max",
            None,
        ),
        (
            "HERO_FAST__servers__websocket__server__methods",
            '["GET"]',
            "servers.websocket.server.methods",
            ["GET"],
        ),
        ("HERO_FAST__SERVERS__WEB__KEEPALIVETIMEOUT", "2.5", "servers.web.keepAliveTimeout", 2.5),  # any case
        (
            "HERO_FAST__general__startingChatRooms",
            '{"lobby": {}}',
            "general.startingChatRooms",
            {"lobby": {}},
        ),
    ],
)
def test_generic_env_form(name, raw, key, value):
    config, sources = load(environ={name: raw})
    assert config_value(config, key) == value
    assert sources[key] == f"env {name}"


def test_generic_env_form_with_a_json_object_merges_into_a_section():
    name = "HERO_FAST__servers__web__fingerprint"
    config, sources = load(environ={name: '{"cookieKey": "sid", "secure": true}'})
    fp = config["servers"]["web"]["fingerprint"]
    assert (fp["cookieKey"], fp["secure"], fp["expire"]) == ("sid", True, 3600)
    assert sources["servers.web.fingerprint.secure"] == f"env {name}"
    assert sources["servers.web.fingerprint.expire"] == "default"


def test_generic_env_form_inside_a_map():
    name = "HERO_FAST__servers__web__httpHeaders__X-Frame-Options"
    config, sources = load(environ={name: "DENY"})
    headers = config["servers"]["web"]["httpHeaders"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Powered-By"] == "hero-fast"
    assert sources["servers.web.httpHeaders"] == f"env {name}"


def test_generic_env_form_unknown_key_warns():
    with pytest.warns(ConfigWarning, match=r"servers.web.prot.*did you mean 'port'"):
        config, _ = load(environ={"HERO_FAST__servers__web__prot": "1"})
    assert config["servers"]["web"]["prot"] == 1


def test_generic_env_form_errors():
    with pytest.raises(ConfigError, match="HERO_FAST_ENV"):
        load(environ={"HERO_FAST__env": "production"})
    with pytest.raises(ConfigError, match="expected HERO_FAST__<section>__<key>"):
        load(environ={"HERO_FAST__servers____port": "1"})
    with pytest.raises(ConfigError, match=r"servers.web.port.*got str 'abc'.*HERO_FAST__servers__web__port"):
        load(environ={"HERO_FAST__servers__web__port": "abc"})


def test_named_env_var_beats_generic_form():
    config, sources = load(environ={"HERO_FAST__servers__web__port": "1111", "HERO_FAST_PORT": "2222"})
    assert config["servers"]["web"]["port"] == 2222
    assert sources["servers.web.port"] == "env HERO_FAST_PORT"


def test_env_vars_beat_env_specific_file_sections(tmp_path):
    write(tmp_path, "web.py", 'production = {"servers": {"web": {"host": "127.0.0.5"}}}')
    config, sources = load(tmp_path, environ={"HERO_FAST_ENV": "production", "HERO_FAST_HOST": "127.0.0.6"})
    assert config["servers"]["web"]["host"] == "127.0.0.6"
    assert sources["servers.web.host"] == "env HERO_FAST_HOST"


# -- overrides -------------------------------------------------------------------------------


def test_overrides_nested_and_dotted_with_labels():
    config, sources = load(
        overrides={
            "servers": {"web": {"host": "::1", "fingerprint": {"secure": True}}},
            "redis_url": "redis://x",
            "general.welcomeMessage": "hi",
        }
    )
    assert config["servers"]["web"]["host"] == "::1"
    assert config["servers"]["web"]["fingerprint"]["secure"] is True
    assert config["general"]["welcomeMessage"] == "hi"
    assert sources["servers.web.host"] == "cli --host"
    assert sources["redis_url"] == "cli --redis-url"
    assert sources["servers.web.fingerprint.secure"] == "overrides"
    assert sources["general.welcomeMessage"] == "overrides"


def test_overrides_beat_env_vars():
    config, sources = load(environ={"HERO_FAST_HOST": "1.1.1.1"}, overrides={"servers.web.host": "2.2.2.2"})
    assert config["servers"]["web"]["host"] == "2.2.2.2"
    assert sources["servers.web.host"] == "cli --host"


def test_overrides_are_validated():
    with pytest.raises(ConfigError, match=r"servers.web.port.*cli --port"):
        load(overrides={"servers.web.port": -1})


# -- helpers ---------------------------------------------------------------------------------


def test_config_value_and_flatten():
    config, _ = load()
    assert config_value(config, "servers.websocket.server.pathname") == "/primus"
    assert config_value(config, "servers.web") is config["servers"]["web"]
    assert config_value(config, "servers.nope.x", None) is None
    with pytest.raises(KeyError, match=r"servers\.nope"):
        config_value(config, "servers.nope")
    flat = flatten(config)
    assert flat["servers.web.port"] == 8080
    assert flat["general.startingChatRooms"] == {"defaultRoom": {}, "anotherRoom": {}}  # a map is a leaf
    assert flat["servers.websocket.client.reconnect.retries"] == 10
    assert "servers.web" not in flat and "general.startingChatRooms.defaultRoom" not in flat
