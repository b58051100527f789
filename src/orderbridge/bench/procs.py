"""Start sandboxes as separate processes for benchmarks (so they use the other core and their
memory is not counted as the hub's)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from orderbridge.sandboxes.base import free_port


@contextmanager
def sandbox_process(kind: str, *args: str, ready_timeout: float = 120.0) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "orderbridge.cli.main", "sandbox", kind, "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox {kind} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(f"{base}/_sandbox/state", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox {kind} did not start within {ready_timeout}s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
