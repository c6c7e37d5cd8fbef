"""What a client hears about an unexpected exception: ``internal error (ref <id>)``.

The exception's text (which may hold file paths, SQL, secrets) stays in the log line, which
carries the same short reference, so an operator can find the traceback a user reports.
Errors meant for the client (``ActionError``, ``ChatError``, validation messages) are not
unexpected and keep their text.
"""

from __future__ import annotations

import logging
import os

__all__ = ["INTERNAL_ERROR", "internal_error"]

INTERNAL_ERROR = "internal error"


def internal_error(logger: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``exc`` (with its traceback) as ``<what> failed [ref R]`` and return the text the
    client gets: ``internal error (ref R)``."""
    ref = os.urandom(4).hex()
    logger.error("%s failed [ref %s]: %s: %s", what, ref, type(exc).__name__, exc, exc_info=exc)
    return f"{INTERNAL_ERROR} (ref {ref})"
