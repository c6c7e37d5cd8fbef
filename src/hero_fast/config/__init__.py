"""hero-fast configuration: documented defaults, loaded from files, env vars and the CLI.

>>> config, sources = load_config(Path("myproject"), env="production")
>>> config_value(config, "servers.web.port"), sources["servers.web.port"]
(8080, 'default')

The option table (defaults, accepted values, descriptions) lives in
`hero_fast.config.defaults`; ``python -m hero_fast.config --markdown`` prints it.
"""

from hero_fast.config.defaults import DEFAULTS, SPEC, Option
from hero_fast.config.loader import (
    CLI_FLAGS,
    ENV_PREFIX,
    NAMED_ENV_VARS,
    ConfigError,
    ConfigWarning,
    config_value,
    engine_options,
    flatten,
    load_config,
    resolve_callable,
    validate,
)

__all__ = [
    "CLI_FLAGS",
    "DEFAULTS",
    "ENV_PREFIX",
    "NAMED_ENV_VARS",
    "SPEC",
    "ConfigError",
    "ConfigWarning",
    "Option",
    "config_value",
    "engine_options",
    "flatten",
    "load_config",
    "resolve_callable",
    "validate",
]
