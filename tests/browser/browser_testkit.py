"""Runs a browser scenario (``run_*.py`` here) inside a private network namespace: only ``lo``
exists and no packet can leave the machine. Skips on a laptop without Chromium, hls.js (npm ci)
or root; fails under ``CI=true``. The scenario prints its result as JSON on its last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mediatools import IN_CI, need_tool

HERE = Path(__file__).resolve().parent


def need(condition: bool, why: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{why} (required under CI; .ci/run installs it)")
        pytest.skip(why)


def run_in_namespace(
    script: str, *args: str, hls_js: Path = HERE / "node_modules/hls.js/dist/hls.min.js"
) -> dict[str, object]:
    """``hls_js``: the copy of hls.js the scenario's page loads (the dashboard's: the package's)."""
    need_tool("chromium")
    unshare = need_tool("unshare")
    need(hls_js.exists(), f"hls.js not installed ({hls_js}: make system-deps)")
    need(os.geteuid() == 0, "a private network namespace needs root")
    shell = f"ip link set lo up && exec {sys.executable} {HERE / script} {' '.join(args)}"
    root = HERE.parents[1]  # this checkout's code, not whatever the venv has installed
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(
        [unshare, "--net", "sh", "-c", shell],
        check=False, capture_output=True, text=True, timeout=180, cwd=root, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
