"""conformance/autobahn/summarize.py on hand-made reports (no wstest needed): a
compression case passes only when the server accepted permessage-deflate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SUMMARIZE = Path(__file__).resolve().parents[2] / "conformance" / "autobahn" / "summarize.py"

HEAD = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n"
ACCEPTED = HEAD + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n"
DECLINED = HEAD + "\r\n"


def summarize(tmp_path: Path, cases: dict[str, tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    """Write a report of ``{case id: (behavior, handshake response)}`` and summarize it."""
    if not SUMMARIZE.is_file():
        pytest.skip("the conformance/ harness is not beside these tests (not a source checkout)")
    index = {}
    for case, (behavior, response) in cases.items():
        name = f"hero_fast_case_{case.replace('.', '_')}.json"
        (tmp_path / name).write_text(json.dumps({"id": case, "behavior": behavior, "httpResponse": response}))
        index[case] = {"behavior": behavior, "behaviorClose": "OK", "duration": 5, "remoteCloseCode": 1000,
                       "reportfile": name}
    (tmp_path / "index.json").write_text(json.dumps({"hero-fast": index}))
    return subprocess.run([sys.executable, str(SUMMARIZE), str(tmp_path / "index.json")],
                          capture_output=True, text=True, timeout=60)


def test_compression_cases_that_negotiated_deflate_pass(tmp_path: Path) -> None:
    out = summarize(tmp_path, {"1.1.1": ("OK", DECLINED), "12.1.1": ("OK", ACCEPTED), "13.2.1": ("OK", ACCEPTED)})
    assert out.returncode == 0, out.stdout
    assert "permessage-deflate negotiated in 2 of 2 compression cases" in out.stdout
    assert out.stdout.rstrip().endswith("RESULT: PASS")


def test_a_server_that_never_negotiates_deflate_fails(tmp_path: Path) -> None:
    # what wstest reports when the server ignores the offer: UNIMPLEMENTED, no extension
    out = summarize(tmp_path, {"1.1.1": ("OK", DECLINED), "12.1.1": ("UNIMPLEMENTED", DECLINED)})
    assert out.returncode == 1
    assert "permessage-deflate negotiated in 0 of 1 compression cases" in out.stdout
    assert "without permessage-deflate (1): 12.1.1" in out.stdout
    assert out.stdout.rstrip().endswith("RESULT: FAIL")


def test_a_compression_case_without_deflate_fails_whatever_its_behavior(tmp_path: Path) -> None:
    out = summarize(tmp_path, {"12.1.1": ("OK", ACCEPTED), "13.7.1": ("OK", DECLINED)})
    assert out.returncode == 1
    assert "without permessage-deflate (1): 13.7.1" in out.stdout
