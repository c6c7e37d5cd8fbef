"""The ``hero-fast`` command: ``serve``, ``new``, ``actions``, ``config``, ``--version``.

Exit status: 0 on success, 2 for a usage or configuration error (the message says what to
change), 1 when the server fails at run time (e.g. the port is taken).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hero_fast.generate import KINDS, MIDDLEWARE_KINDS, GenerateError, generate, scaffold

__all__ = ["main", "scaffold"]

PROG = "hero-fast"


_default_showwarning = warnings.showwarning


class CliError(Exception):
    """A message for the user; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _version() -> str:
    from hero_fast import __version__

    return __version__


# -- new and generate ------------------------------------------------------------------------


def _cmd_new(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    written = scaffold(target)
    print(f"Created {target}/ ({len(written)} files):")
    for path in written:
        print(f"  {path.relative_to(target).as_posix()}")
    steps = [] if target.resolve() == Path.cwd().resolve() else [f"cd {shlex.quote(args.dir)}"]
    steps.append("hero-fast serve      # then open http://127.0.0.1:8080/")
    steps.append("python -m pytest     # the project's tests (needs pytest and pytest-asyncio)")
    print("\nNext:\n" + "\n".join("  " + step for step in steps))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    project = _project(args)
    for path in generate(args.kind, args.name, project, args.middleware_kind):
        print(f"wrote {path.relative_to(project).as_posix()}")
    return 0


# -- serve ------------------------------------------------------------------------------------


def _project(args: argparse.Namespace) -> Path:
    project = Path(args.project) if args.project else Path.cwd()
    if not project.is_dir():
        raise CliError(f"project folder {project} does not exist (use --project DIR, or 'hero-fast new DIR')")
    return project.resolve()


def _api_class() -> Any:
    from hero_fast.app import Api

    return Api


def _file_arg(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise CliError(f"{flag} {value}: no such file")
    return str(path.resolve())


def _serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["servers.web.host"] = args.host
    if args.port is not None:
        overrides["servers.web.port"] = args.port
    if args.redis_url is not None:
        overrides["redis_url"] = args.redis_url
    if args.log_level is not None:
        overrides["logging.level"] = args.log_level
    if args.log_json:
        overrides["logging.json"] = True
    certfile = _file_arg(args.certfile, "--certfile")
    keyfile = _file_arg(args.keyfile, "--keyfile")
    if certfile is not None:
        overrides["servers.web.certfile"] = certfile
    if keyfile is not None:
        overrides["servers.web.keyfile"] = keyfile
    return overrides


def _redis_url(project: Path, args: argparse.Namespace, overrides: Mapping[str, Any]) -> str | None:
    """The effective ``redis_url`` (flag, env or config file); loading also validates the config."""
    from hero_fast.config import load_config

    config, _ = load_config(project, env=args.env, overrides=overrides)
    url = config.get("redis_url")
    return str(url) if url else None


def _setup_logging(config: Mapping[str, Any]) -> None:
    from hero_fast.logs import configure_logging

    cfg = config.get("logging") or {}
    configure_logging(cfg.get("level", "info"), json=bool(cfg.get("json")), redact=cfg.get("redact", ()))


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CliError(f"--workers must be at least 1, got {args.workers}")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise CliError(f"--port must be from 0 to 65535, got {args.port}")
    project = _project(args)
    overrides = _serve_overrides(args)

    if args.workers > 1:
        if not _redis_url(project, args, overrides):
            raise CliError(
                f"--workers {args.workers} needs a Redis URL (--redis-url redis://HOST:6379/0, env "
                "HERO_FAST_REDIS_URL or redis_url in config/): the worker processes share rooms, say and "
                "connection.send through Redis. Without Redis, run one process (--workers 1)."
            )
        from hero_fast.cluster.workers import serve_workers

        return serve_workers(project, args.workers, overrides, env=args.env)

    Api = _api_class()
    api = Api(project, env=args.env, overrides=overrides)
    _setup_logging(api.config)
    api.load()  # the project's code: a mistake is one line and exit status 2, before anything runs
    folders = ("actions", "config", "public", "initializers", "middleware")
    if not any((project / d).is_dir() for d in folders):
        logging.getLogger("hero_fast").warning(
            "%s has none of the folders %s: serving the built-in actions only ('hero-fast new DIR' creates a "
            "project)",
            project,
            ", ".join(f"{d}/" for d in folders),
        )
    from hero_fast.cluster import ClusterError

    try:
        api.run(reuse_port=args.reuse_port)
    except ClusterError as exc:
        raise CliError(str(exc), 1) from exc
    except OSError as exc:
        web = api.config["servers"]["web"]
        raise CliError(f"cannot serve on {web['host']}:{web['port']}: {exc}", 1) from exc
    except KeyboardInterrupt:
        return 130
    return 0


# -- actions ----------------------------------------------------------------------------------


def _input_names(inputs: Any) -> str:
    if not isinstance(inputs, Mapping) or not inputs:
        return "-"
    names = []
    for name, spec in inputs.items():
        required = isinstance(spec, Mapping) and spec.get("required")
        names.append(f"{name}*" if required else str(name))
    return ", ".join(names)


def _cmd_actions(args: argparse.Namespace) -> int:
    project = _project(args)
    Api = _api_class()
    api = Api(project, env=args.env)
    api.load()
    docs: Mapping[str, Mapping[Any, Mapping[str, Any]]] = api.actions.documentation()
    if args.json:
        print(json.dumps(docs, indent=2, sort_keys=True, default=repr))
        return 0
    rows = [("ACTION", "VERSION", "INPUTS", "DESCRIPTION")]
    for name in sorted(docs):
        for version in sorted(docs[name], key=lambda v: (str(type(v)), v)):
            entry = docs[name][version]
            rows.append(
                (
                    str(name),
                    str(version),
                    _input_names(entry.get("inputs")),
                    " ".join(str(entry.get("description") or "").split()),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    print(f"\n{len(rows) - 1} action(s); * = required input", file=sys.stderr)
    return 0


# -- config -----------------------------------------------------------------------------------


def _shown(config: dict[str, Any]) -> dict[str, Any]:
    """The config as ``hero-fast config`` prints it: secrets (``cluster.secret``,
    ``publish.secret``, a password in ``redis_url``) hidden, so the output can be shared."""
    from hero_fast.cluster.resp import redact_url
    from hero_fast.redact import REDACTED, Redactor

    secret = Redactor(("secret", "password", "passwd", "token")).is_secret

    def hide(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: hide(v, k) for k, v in value.items()}
        if value is None:
            return None
        if secret(key):
            return REDACTED
        if key.endswith("_url") and isinstance(value, str):
            return redact_url(value)
        return value

    return hide(config, "")  # type: ignore[no-any-return]


def _cmd_config(args: argparse.Namespace) -> int:
    from hero_fast.config import flatten, load_config

    config, sources = load_config(_project(args), env=args.env)
    shown = _shown(config)
    if args.json:
        print(json.dumps({"config": shown, "sources": sources}, indent=2, default=repr))
        return 0
    for key, value in flatten(shown).items():
        text = json.dumps(value, default=repr)
        print(f"{key} = {text}  # {sources[key]}")
    return 0


# -- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="An actionhero-style realtime API server: actions over HTTP and WebSocket, chat rooms.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "serve",
        help="run the server for a project (default: the current folder)",
        description="Run the server until SIGINT/SIGTERM (then stop gracefully).",
    )
    p.add_argument("--host", help="address to listen on (config servers.web.host; default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, help="port to listen on, 0 for any free one (servers.web.port; default 8080)"
    )
    p.add_argument("--project", metavar="DIR", help="the project folder (default: the current folder)")
    p.add_argument(
        "--env", help="environment selecting config sections (default: HERO_FAST_ENV or development)"
    )
    p.add_argument("--redis-url", metavar="URL", help="Redis for several processes or nodes (redis_url)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes to run (N > 1 needs Redis)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for --workers children
    p.add_argument("--certfile", metavar="FILE", help="TLS certificate chain (PEM): serve https and wss")
    p.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM), if not in the certfile")
    p.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="logging level (config logging.level; default info)",
    )
    p.add_argument(
        "--log-json", action="store_true", help="log one JSON object per line (config logging.json)"
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "new",
        help="create a new project in DIR (which must not exist or be empty)",
        description="Scaffold a runnable project: actions/, config/, public/ (a chat page).",
    )
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=_cmd_new)

    p = sub.add_parser(
        "generate",
        help="write a new action, initializer or middleware, and a test of it, into the project",
        description="Write KIND NAME into the project's folder for it and tests/test_<kind>_<name>.py "
        "(a passing test to grow from). Existing files are never overwritten.",
    )
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    p.add_argument("name", metavar="NAME", help="e.g. createUser (an action's name as clients call it)")
    p.add_argument("--project", metavar="DIR", help="the project folder (default: the current folder)")
    p.add_argument(
        "--middleware-kind",
        default="action",
        choices=MIDDLEWARE_KINDS,
        help="for middleware: action (default), connection or chat",
    )
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("actions", help="list a project's actions")
    p.add_argument("--project", metavar="DIR", help="the project folder (default: the current folder)")
    p.add_argument("--env", help="environment (default: HERO_FAST_ENV or development)")
    p.add_argument("--json", action="store_true", help="print the documentation as JSON")
    p.set_defaults(func=_cmd_actions)

    p = sub.add_parser("config", help="show every option's effective value and where it came from")
    p.add_argument("--project", metavar="DIR", help="the project folder (default: the current folder)")
    p.add_argument("--env", help="environment (default: HERO_FAST_ENV or development)")
    p.add_argument("--json", action="store_true", help="print the config and its sources as JSON")
    p.set_defaults(func=_cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from hero_fast.config import ConfigError
    from hero_fast.project import ProjectError

    previous, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return 2
    except (ProjectError, GenerateError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Warnings of hero-fast's own (config, project) in one line each, as errors are."""
    from hero_fast.config import ConfigWarning
    from hero_fast.project import ProjectWarning

    if issubclass(category, (ConfigWarning, ProjectWarning)):
        print(f"{PROG}: warning: {message}", file=sys.stderr if file is None else file)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


if __name__ == "__main__":
    sys.exit(main())
