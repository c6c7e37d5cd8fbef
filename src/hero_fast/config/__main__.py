"""``python -m hero_fast.config --markdown | --json | --show [--project DIR] [--env ENV]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _jsonable(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else repr(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hero_fast.config", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--markdown", action="store_true", help="print the reference of every option")
    mode.add_argument("--json", action="store_true", help="print the defaults as JSON")
    mode.add_argument(
        "--show", action="store_true", help="print the effective config and where each value came from"
    )
    parser.add_argument("--project", type=Path, default=None, help="project dir for --show (default: .)")
    parser.add_argument("--env", default=None, help="environment for --show")
    args = parser.parse_args(argv)

    from hero_fast.config import DEFAULTS, ConfigError, flatten, load_config
    from hero_fast.config.docs import markdown

    if args.markdown:
        sys.stdout.write(markdown())
    elif args.json:
        print(json.dumps(DEFAULTS, indent=2, default=repr))
    else:
        try:
            config, sources = load_config(args.project or Path.cwd(), env=args.env)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for key, value in flatten(config).items():
            print(f"{key} = {json.dumps(_jsonable(value), default=repr)}  # {sources[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
