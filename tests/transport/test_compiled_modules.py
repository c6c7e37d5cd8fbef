"""The engine is the compiled one: no silent pure-Python fallback."""

from __future__ import annotations

import asyncio
import importlib.machinery

import hero_fast
import hero_fast._core
import hero_fast._deflate
import hero_fast._transport


def test_core_and_transport_are_extension_modules():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for mod in (hero_fast._core, hero_fast._deflate, hero_fast._transport):
        assert mod.__file__.endswith(suffixes), mod.__file__
        assert isinstance(mod.__loader__, importlib.machinery.ExtensionFileLoader)


def test_public_names_come_from_the_compiled_modules():
    assert hero_fast.Codec is hero_fast._core.Codec
    assert hero_fast.serve is hero_fast._transport.serve
    assert hero_fast.Codec.__module__ == "hero_fast._core"
    assert hero_fast.Connection.__module__ == "hero_fast._transport"


def test_codec_never_imports_asyncio_machinery():
    # sans-I/O: the codec module does not reference the event loop
    assert not hasattr(hero_fast._core, "asyncio")


def test_runs_on_requested_loop(run):
    async def main():
        return type(asyncio.get_running_loop()).__module__

    module = run(main())
    assert module.startswith("uvloop") if run.kind == "uvloop" else module.startswith("asyncio")
