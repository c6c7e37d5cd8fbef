"""Load the configuration: defaults < project config files < env vars < overrides (CLI)."""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.util
import json
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hero_fast.config.defaults import SPEC, Option, build_defaults
from hero_fast.project.imports import describe_failure

if TYPE_CHECKING:
    from hero_fast._transport import Options

__all__ = [
    "CLI_FLAGS",
    "ENV_PREFIX",
    "NAMED_ENV_VARS",
    "ConfigError",
    "ConfigWarning",
    "config_value",
    "engine_options",
    "flatten",
    "load_config",
    "resolve_callable",
    "validate",
]

ENV_PREFIX = "HERO_FAST__"
"""Generic env form: ``HERO_FAST__servers__web__port=8081`` (value parsed as JSON when it parses)."""

NAMED_ENV_VARS: dict[str, str] = {
    "HERO_FAST_HOST": "servers.web.host",
    "HERO_FAST_PORT": "servers.web.port",
    "HERO_FAST_REDIS_URL": "redis_url",
}
"""Short env vars and the option each one sets (``HERO_FAST_ENV`` selects the environment)."""

CLI_FLAGS: dict[str, str] = {
    "env": "--env",
    "servers.web.host": "--host",
    "servers.web.port": "--port",
    "redis_url": "--redis-url",
    "servers.web.certfile": "--certfile",
    "servers.web.keyfile": "--keyfile",
}
"""Options set by ``hero-fast serve`` flags; an override of one is labelled ``cli --flag``."""

_MISSING: Any = object()
Path_ = tuple[str, ...]


class ConfigError(ValueError):
    """A configuration value is missing, malformed or refused; the message says which and why."""


class ConfigWarning(UserWarning):
    """Something in the configuration is probably a mistake (e.g. an unknown key)."""


# -- helpers over the option table ------------------------------------------------------------


def _dotted(path: Iterable[str]) -> str:
    return ".".join(path)


def _spec_at(path: Path_) -> Any:
    """The spec node at ``path``: a section dict, an Option, or None when unknown."""
    node: Any = SPEC
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _leaf_key(path: Path_) -> Path_:
    """``path`` cut after the first Option on it (a key inside a map belongs to the map)."""
    node: Any = SPEC
    for i, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            return path
        node = node[key]
        if isinstance(node, Option):
            return path[: i + 1]
    return path


def _walk(value: Any, spec: Any, path: Path_) -> Iterator[tuple[Path_, Any, bool]]:
    """Leaves of ``value`` (spec-aware): ``(path, value, unknown_here)``.

    ``unknown_here`` is True for the first key on a path that the option table does not know
    (its children are not reported as unknown again).
    """
    if isinstance(spec, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{_dotted(path) or 'config'} must be a dict (a section), got {_describe(value)}"
            )
        for key, sub in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{_dotted(path) or 'config'}: keys must be strings, got {key!r}")
            child = spec.get(key)
            if child is None:
                yield from _walk_unknown(sub, (*path, key), first=True)
            else:
                yield from _walk(sub, child, (*path, key))
    else:  # an Option
        yield path, value, False


def _walk_unknown(value: Any, path: Path_, first: bool) -> Iterator[tuple[Path_, Any, bool]]:
    if isinstance(value, Mapping) and value:
        if first:
            yield path, _MISSING, True  # report once, assign nothing
        for key, sub in value.items():
            yield from _walk_unknown(sub, (*path, str(key)), first=False)
    else:
        yield path, value, first


def flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"servers.web.port": 8080, ...}``: every leaf by dotted path.

    Maps (``httpHeaders``, ``startingChatRooms``, ...) are leaves; keys the option table does
    not know are flattened down to their own leaves.
    """
    return {_dotted(p): v for p, v, _ in _walk(config, SPEC, ()) if v is not _MISSING}


def config_value(config: Mapping[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    """``config_value(config, "servers.web.port")``; KeyError (or ``default``) when absent."""
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is _MISSING:
                raise KeyError(f"no config option {dotted!r}")
            return default
        node = node[key]
    return node


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # a hook or some object that refuses to be copied: keep the reference
        return value


def _set(config: dict[str, Any], path: Path_, value: Any) -> None:
    node = config
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = node[key] = {}
        node = nxt
    node[path[-1]] = _copy(value)


def _suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.75)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if key.lower() in lowered:
            close = [lowered[key.lower()]]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _warn_unknown(path: Path_, origin: str) -> None:
    parent = _spec_at(path[:-1])
    if not isinstance(parent, dict):
        return
    key = path[-1]
    hint = _suggest(key, parent)
    if len(path) == 1 and not hint:
        return  # a top-level section of the application's own: actionhero allows that
    where = f"section {_dotted(path[:-1])!r}" if len(path) > 1 else "the top level"
    warnings.warn(
        f"{origin}: unknown config key {_dotted(path)!r} in {where}{hint}; "
        "it is kept but hero-fast does not use it",
        ConfigWarning,
        stacklevel=4,
    )


class _Layers:
    """Applies layers onto the config and records where each leaf came from."""

    def __init__(self) -> None:
        self.config = build_defaults()
        self.sources: dict[str, str] = {}

    def apply(
        self, layer: Any, origin: str, *, label: Callable[[Path_], str] | None = None, base: Path_ = ()
    ) -> None:
        """Deep-merge ``layer`` (a nested dict) at ``base``; section values may be callables
        taking the config so far and returning the dict (actionhero's ``(config) => ({...})``)."""
        spec = _spec_at(base) if base else SPEC
        try:
            layer = self._resolve_callables(layer, spec, base)
            if spec is None:
                items = list(_walk_unknown(layer, base, first=True))
            elif isinstance(spec, Option):
                items = [(base, layer, False)]
            else:
                items = list(_walk(layer, spec, base))
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc.__cause__
        for path, value, unknown in items:
            if unknown:
                _warn_unknown(path, origin)
            if value is _MISSING:
                continue
            if path == ("env",) and origin.startswith("config/"):
                warnings.warn(
                    f"{origin}: 'env' cannot be set from a config file (use HERO_FAST_ENV or --env); ignored",
                    ConfigWarning,
                    stacklevel=3,
                )
                continue
            _set(self.config, path, value)
            self.sources[_dotted(_leaf_key(path))] = label(path) if label else origin

    def _resolve_callables(self, layer: Any, spec: Any, path: Path_) -> Any:
        if isinstance(spec, dict):
            if callable(layer) and not isinstance(layer, Mapping):
                try:
                    layer = layer(_copy(self.config))
                except Exception as exc:
                    where = _dotted(path) or "the config"
                    raise ConfigError(
                        f"the function given for {where} failed: {type(exc).__name__}: {exc}"
                    ) from exc
            if isinstance(layer, Mapping):
                return {k: self._resolve_callables(v, spec.get(k), (*path, str(k))) for k, v in layer.items()}
        return layer


# -- the sources of a configuration -----------------------------------------------------------


def _config_dirs(project_dir: Path, layers: _Layers) -> list[Path]:
    dirs = config_value(layers.config, "general.paths.config")
    if isinstance(dirs, str):
        dirs = [dirs]
    if not isinstance(dirs, (list, tuple)):
        raise ConfigError(f"general.paths.config must be a list of strings, got {_describe(dirs)}")
    return [project_dir / d for d in dirs]


def _config_files(project_dir: Path, dirs: list[Path]) -> list[tuple[Path, str]]:
    files = []
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.py")):
            if f.name.startswith("_") or not f.is_file():
                continue
            try:
                label = f.relative_to(project_dir).as_posix()
            except ValueError:
                label = str(f)
            files.append((f, label))
    return files


def _load_module(path: Path, label: str) -> Any:
    name = f"_hero_fast_config_{abs(hash(str(path.resolve()))):x}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{label}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        text = describe_failure(path, exc, None).replace(str(path), label, 1)
        raise ConfigError(f"{text} (while loading it)") from exc
    finally:
        sys.modules.pop(name, None)
    return module


_KNOWN_ENVS = ("development", "production", "test", "staging")


def _sections(module: Any) -> list[str]:
    """Module-level names holding a dict that looks like config (a known top-level key)."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or not isinstance(value, Mapping):
            continue
        if any(key in SPEC for key in value):
            names.append(name)
    return names


def _warn_sections(modules: list[tuple[Any, str]], env_name: str, env_origin: str) -> None:
    """Warn about config that would silently do nothing: ``DEFAULTS`` for ``DEFAULT``, a
    misspelled environment section, an environment no file has a section for."""
    envs: set[str] = set()
    for module, label in modules:
        for name in _sections(module):
            if name == "DEFAULT":
                continue
            if name.upper() in ("DEFAULTS", "DEFAULT") or difflib.get_close_matches(name, ["DEFAULT"], 1, 0.8):
                warnings.warn(
                    f"{label}: {name} is not read (did you mean DEFAULT?)", ConfigWarning, stacklevel=3
                )
                continue
            close = difflib.get_close_matches(name, _KNOWN_ENVS, 1, 0.8)
            if close and close[0] != name:
                warnings.warn(
                    f"{label}: section {name!r} looks like a misspelling of {close[0]!r}; it only applies "
                    f"with --env {name}",
                    ConfigWarning,
                    stacklevel=3,
                )
            envs.add(name)
    if env_name not in envs and env_name not in _KNOWN_ENVS:
        # an environment without a section of its own is fine, unless its name looks like a typo
        close = difflib.get_close_matches(env_name, [*envs, *_KNOWN_ENVS], 1, 0.75)
        if close:
            warnings.warn(
                f"no config module has a section for environment {env_name!r} (from {env_origin}) (did you "
                f"mean {close[0]!r}?); sections found: {', '.join(sorted(envs)) or 'none'}",
                ConfigWarning,
                stacklevel=3,
            )


def _parse_port(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"env {name} must be a port number (0-65535), got {raw!r}") from None


def _env_path(name: str) -> Path_:
    raw = name[len(ENV_PREFIX) :].split("__")
    if not raw or any(not part for part in raw):
        raise ConfigError(
            f"env {name}: expected HERO_FAST__<section>__<key>, e.g. HERO_FAST__servers__web__port"
        )
    # Match each part against the known keys, exactly or else case-insensitively (some shells
    # and platforms upper-case env var names).
    path: list[str] = []
    node: Any = SPEC
    for part in raw:
        key = part
        if isinstance(node, dict):
            if part not in node:
                matches = [k for k in node if k.lower() == part.lower()]
                if len(matches) == 1:
                    key = matches[0]
            node = node.get(key)
        else:
            node = None
        path.append(key)
    return tuple(path)


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _env_layers(environ: Mapping[str, str]) -> list[tuple[Path_, Any, str]]:
    out: list[tuple[Path_, Any, str]] = []
    for name in sorted(k for k in environ if k.startswith(ENV_PREFIX)):
        path = _env_path(name)
        if path == ("env",):
            raise ConfigError(f"env {name}: set the environment with HERO_FAST_ENV")
        out.append((path, _env_value(environ[name]), f"env {name}"))
    for name, dotted in NAMED_ENV_VARS.items():
        raw = environ.get(name, "")
        if raw == "":
            continue
        value: Any = _parse_port(name, raw) if name == "HERO_FAST_PORT" else raw
        out.append((tuple(dotted.split(".")), value, f"env {name}"))
    return out


def _override_layers(overrides: Mapping[str, Any] | None) -> list[tuple[Path_, Any, str]]:
    """Overrides as a nested dict and/or dotted keys: ``{"servers.web.port": 1}``."""
    out: list[tuple[Path_, Any, str]] = []
    for key, value in (overrides or {}).items():
        if not isinstance(key, str):
            raise ConfigError(f"override keys must be strings, got {key!r}")
        path = tuple(key.split("."))
        out.append((path, value, "overrides"))
    return out


def _override_label(path: Path_) -> str:
    flag = CLI_FLAGS.get(_dotted(_leaf_key(path)))
    return f"cli {flag}" if flag else "overrides"


def load_config(
    project_dir: Path | str | None,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Build the configuration of a project; returns ``(config, sources)``.

    Precedence, lowest first:

    1. the built-in defaults (`hero_fast.config.DEFAULTS`);
    2. the project's ``config/*.py`` modules (``general.paths.config``), in sorted file
       order, skipping names starting with ``_``: first every module's ``DEFAULT`` dict, then
       every module's dict named after the environment (``production = {...}``);
    3. env vars: ``HERO_FAST__<path>`` (``HERO_FAST__servers__web__port=8081``; the value is
       parsed as JSON when it parses, else kept as a string), then ``HERO_FAST_HOST``,
       ``HERO_FAST_PORT`` and ``HERO_FAST_REDIS_URL``;
    4. ``overrides`` (the CLI flags): a nested dict and/or dotted keys.

    The environment is ``env``, else ``HERO_FAST_ENV``, else ``"development"``.
    ``project_dir`` None loads no project files. ``sources`` maps every dotted leaf path of
    the result (see `flatten`) to where its value came from: ``"default"``,
    ``"config/web.py"``, ``"config/web.py [production]"``, ``"env HERO_FAST_PORT"``,
    ``"cli --port"`` or ``"overrides"``.

    Raises `ConfigError` on a value the option table refuses; warns (`ConfigWarning`) on a
    key it does not know.
    """
    layers = _Layers()

    if env is not None:
        env_name, env_origin = env, "cli --env"
    elif environ.get("HERO_FAST_ENV"):
        env_name, env_origin = environ["HERO_FAST_ENV"], "env HERO_FAST_ENV"
    else:
        env_name, env_origin = "development", "default"
    if not isinstance(env_name, str) or not env_name.strip():
        raise ConfigError(
            f"the environment name must be a non-empty string, got {env_name!r} (from {env_origin})"
        )
    env_name = env_name.strip()

    env_items = _env_layers(environ)
    override_items = _override_layers(overrides)

    if project_dir is not None:
        project = Path(project_dir)
        # Where the config files live may only be moved by env vars or overrides.
        probe = _Layers()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path, value, origin in env_items + override_items:
                probe.apply(value, origin, base=path)
        files = _config_files(project, _config_dirs(project, probe))
        modules = [(_load_module(file, label), label) for file, label in files]
        for module, label in modules:
            if hasattr(module, "DEFAULT"):
                layers.apply(module.DEFAULT, label)
        for module, label in modules:
            section = getattr(module, env_name, None)
            if isinstance(section, (type, types.ModuleType)):
                section = None  # e.g. env "os" in a module that imports os: not a section
            if section is not None:
                layers.apply(section, f"{label} [{env_name}]")
        _warn_sections(modules, env_name, env_origin)

    for path, value, origin in env_items:
        layers.apply(value, origin, base=path)
    for path, value, _origin in override_items:
        layers.apply(value, "overrides", base=path, label=_override_label)

    layers.config["env"] = env_name
    layers.sources["env"] = env_origin

    config = layers.config
    sources = {key: layers.sources.get(key, "default") for key in flatten(config)}
    validate(config, sources)
    return config, sources


# -- validation --------------------------------------------------------------------------------


def validate(config: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> None:
    """Check every known option; raise one `ConfigError` listing every problem."""
    sources = sources or {}
    problems: list[str] = []

    def origin(key: str) -> str:
        src = sources.get(key)
        return f" (from {src})" if src else ""

    def visit(node: Any, spec: dict[str, Any], path: Path_) -> None:
        for key, sub in spec.items():
            dotted = _dotted((*path, key))
            if not isinstance(node, Mapping) or key not in node:
                problems.append(f"{dotted} is missing")
                continue
            value = node[key]
            if isinstance(sub, dict):
                if not isinstance(value, Mapping):
                    problems.append(
                        f"{dotted} must be a section (a dict), got {_describe(value)}{origin(dotted)}"
                    )
                else:
                    visit(value, sub, (*path, key))
                continue
            error = sub.check(value)
            if error is not None:
                got = "" if sub.check.explains else f", got {_describe(value)}"
                problems.append(f"{dotted} {error}{got}{origin(dotted)}")

    visit(config, SPEC, ())

    if not problems:
        web = config["servers"]["web"]
        ws = config["servers"]["websocket"]
        if web["keyfile"] is not None and web["certfile"] is None:
            problems.append(
                "servers.web.keyfile is set but servers.web.certfile is not" + origin("servers.web.keyfile")
            )
        if ws["writeBufferLow"] > ws["writeBufferHigh"]:
            problems.append(
                "servers.websocket.writeBufferLow must not exceed servers.websocket.writeBufferHigh, got "
                f"{ws['writeBufferLow']} > {ws['writeBufferHigh']}"
                + origin("servers.websocket.writeBufferLow")
            )
        if web["urlPathForActions"].strip("/") == "" or web["urlPathForActions"] == web["urlPathForFiles"]:
            problems.append(
                "servers.web.urlPathForActions must be a non-empty path distinct from urlPathForFiles, got "
                f"{web['urlPathForActions']!r}" + origin("servers.web.urlPathForActions")
            )

    if len(problems) == 1:
        raise ConfigError(f"invalid configuration: {problems[0]}")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


# -- consumers' helpers ------------------------------------------------------------------------


def engine_options(config: Mapping[str, Any]) -> Options:
    """`hero_fast._transport.Options` from the websocket engine limits and web body/keep-alive.

    ``ping_interval`` is 0: the Primus heartbeat (``server.pingInterval``) replaces WebSocket
    pings.
    """
    from hero_fast._transport import Options

    web = config["servers"]["web"]
    ws = config["servers"]["websocket"]
    return Options(
        max_message_size=ws["maxMessageSize"],
        max_fragments=ws["maxFragments"],
        handshake_timeout=ws["handshakeTimeout"],
        close_timeout=ws["closeTimeout"],
        max_request_line=ws["maxRequestLine"],
        max_headers=ws["maxHeaders"],
        max_header_bytes=ws["maxHeaderBytes"],
        max_body_size=web["maxBodySize"],
        keepalive_timeout=web["keepAliveTimeout"],
        write_buffer_high=ws["writeBufferHigh"],
        write_buffer_low=ws["writeBufferLow"],
        max_send_buffer=ws["maxSendBuffer"],
        slow_consumer=ws["slowConsumer"],
        ping_interval=0,
        deflate=ws["perMessageDeflate"]["enabled"],
        deflate_server_no_context_takeover=ws["perMessageDeflate"]["serverNoContextTakeover"],
        deflate_client_no_context_takeover=ws["perMessageDeflate"]["clientNoContextTakeover"],
        deflate_server_max_window_bits=ws["perMessageDeflate"]["serverMaxWindowBits"],
        deflate_client_max_window_bits=ws["perMessageDeflate"]["clientMaxWindowBits"],
        deflate_level=ws["perMessageDeflate"]["level"],
        deflate_mem_level=ws["perMessageDeflate"]["memLevel"],
        deflate_min_size=ws["perMessageDeflate"]["threshold"],
        max_connections=ws["maxConnections"],
        max_connections_per_ip=ws["maxConnectionsPerIp"],
        max_messages_per_second=ws["maxMessagesPerSecond"],
        max_pings_per_second=ws["maxPingsPerSecond"],
        rate_limit_policy=ws["rateLimitPolicy"],
        frame_timeout=ws["frameTimeout"],
        trusted_proxies=web["trustedProxies"],
    )


def resolve_callable(value: Any, what: str = "hook") -> Callable[..., Any] | None:
    """A hook option as a callable: None stays None, a callable is returned as is, and a
    ``"package.module:function"`` string is imported (the project dir should be on sys.path)."""
    if value is None:
        return None
    if callable(value):
        fn: Callable[..., Any] = value
        return fn
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{what} must be a callable or a 'package.module:function' string, got {value!r}")
    module_name, _, attr = value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {value!r} cannot be imported: {exc}") from exc
    if not callable(obj):
        raise ConfigError(f"{what} {value!r} is not callable")
    hook: Callable[..., Any] = obj
    return hook
