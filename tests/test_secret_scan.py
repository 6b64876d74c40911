"""The secret scan (``secret_scan``) fails a run whose logs hold a secret it minted, one in a
known format, or one a gateway process wrote to its log file, and passes a clean run: pytest
runs in a child process with the plugin, on test files written here."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

LEAKS = """
import logging, subprocess, sys
from mediagw.platform import keys, streams

log = logging.getLogger("mediagw.demo")

def test_stream_key_in_a_record():
    key = streams.new_stream_key()
    open("minted.txt", "w").write(key)
    log.warning("publish refused key=%s", key)

def test_unseen_api_key_shape():
    log.error("bad key", extra={"key": "mgw_0123456789abcdef_" + "A" * 43})

def test_gateway_process_log(tmp_path):
    key = streams.new_stream_key()
    with open(tmp_path / "node.log", "wb") as out:
        code = "import sys; print('12:00:00.000 info    mediagw.node hello', sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, key], stdout=out, check=True)
"""

CLEAN = """
import logging
import pytest
from mediagw.config import Settings
from mediagw.platform import streams

@pytest.mark.parametrize("metrics_key", ["metrics-KEY-0a1b2c3d"])  # in the test's id: not a leak
def test_clean(metrics_key):
    Settings(metrics_key=metrics_key)
    key = streams.new_stream_key()
    logging.getLogger("mediagw.demo").warning("publish refused key=%s...", key[:4])
"""


@pytest.fixture
def child_env(monkeypatch: pytest.MonkeyPatch) -> None:
    path = [str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))


@pytest.mark.usefixtures("child_env")
def test_a_leaked_secret_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = pytester.runpytest_subprocess("-p", "secret_scan", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(passed=3)  # every test passed: the scan alone fails the run
    assert re.search(r"secret scan: 2 secrets, \d+ log records, \d+ bytes .*: 3 LEAKED", out), out
    found = [line for line in out.splitlines() if line.startswith("  ")]
    assert any(
        "stream key" in line and "a log record: logger mediagw.demo" in line
        and "test_stream_key_in_a_record" in line for line in found
    ), out  # fmt: skip
    assert any("API key mgw_" in line and "test_unseen_api_key_shape" in line for line in found)
    assert any(
        "process log" in line and "logger mediagw.node" in line
        and "test_gateway_process_log" in line for line in found
    ), out  # fmt: skip
    key = (pytester.path / "minted.txt").read_text()
    assert f"stream key {key[:4]}...(19 chars)" in out and key not in out  # a prefix only


@pytest.mark.usefixtures("child_env")
def test_a_clean_run_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_clean=CLEAN)
    result = pytester.runpytest_subprocess("-p", "secret_scan", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out
    assert re.search(r"secret scan: 2 secrets, \d+ log records, 0 bytes .*: clean", out), out


@pytest.mark.usefixtures("child_env")
def test_a_secret_leaked_on_an_xdist_worker_fails_the_run(pytester: pytest.Pytester) -> None:
    """``make test`` runs tests/e2e on two xdist workers: each scans its own tests' logs, and
    the controller reports every worker's findings and fails the run."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_leaks=LEAKS, test_clean=CLEAN)
    result = pytester.runpytest_subprocess(
        "-p", "secret_scan", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(passed=4)
    assert re.search(r"secret scan on 2 workers: 4 secrets, \d+ log records, .*: 3 LEAKED", out)
    found = [line for line in out.splitlines() if line.startswith("  ")]
    assert sum("test_leaks.py::" in line for line in found) == 3, out
    assert not any("test_clean" in line for line in found), out
