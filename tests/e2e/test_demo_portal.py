"""``make demo`` ends serving the portal over the demo's data, as a newcomer runs it: the command
prints the accounting, then the portal's address and a demo login, serves until Ctrl-C, and exits 0.
(``orderbridge demo --json`` and ``--no-serve`` keep the accounting only: tests/e2e/test_cli.py.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orderbridge.sandboxes.base import free_port
from tests.web.portal.conftest import csrf_in


@pytest.mark.slow
def test_the_demo_serves_the_portal_over_its_data_with_a_login_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ORDERBRIDGE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "orderbridge.cli.main", "demo", "--orders", "40", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 240
        login = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            login = re.search(r"Sign in as (\S+) with the password (\S+)", line) or login
            if login:
                break
        assert login, "".join(seen)[-3000:]
        assert f"http://127.0.0.1:{port}" in "".join(seen)
        email, password = login.group(1), login.group(2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as browser:
            form = browser.get("/login")
            signed = browser.post(
                "/login",
                data={"email": email, "password": password, "csrf_token": csrf_in(form.text), "next": "/account"},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            account = browser.get("/account")
            assert account.status_code == 200 and "Demo admin" in account.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
