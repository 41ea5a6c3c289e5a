"""An emulator in its own process, so benchmarks do not share its GIL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def served_emulator(snapshot: Path, quota_scale: float | None = None) -> Iterator[str]:
    """`connect-reconciler emulator serve` on a free port; yields its URL."""
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "emulator",
        "serve",
        "--port",
        "0",
        "--snapshot",
        str(snapshot),
    ]
    if quota_scale is not None:
        command += ["--quota-scale", str(quota_scale)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().split(" at ")[1].split(" ")[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


def control(url: str, action: str, method: str = "GET", body: dict | None = None) -> dict:
    """The emulator's control paths: stats (GET), reset (POST), quota-scale (PUT)."""
    data = None if method == "GET" else json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{url}/_emulator/{action}", method=method, data=data)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
