"""A hub fleet on this machine for ``bench scale`` and the chaos suite: a private PostgreSQL
cluster, T tenants each with its own Shopify store and ShipStation account (sandboxes in their own
processes, with credentials of their own), one web process receiving webhooks and W worker
processes — all real processes talking real HTTP and SQL on 127.0.0.1.

- :class:`PrivatePostgres` is a cluster of our own (``initdb`` + ``pg_ctl`` from PostgreSQL 15's
  binaries, in a temporary directory, on a free port): the chaos suite restarts it and
  ``bench scale`` reads ``pg_stat_statements`` from it. The shared server on 5432 is never
  touched. As root (CI here), the cluster runs as the ``postgres`` system user.
- :func:`worker_command` and :func:`web_command` are the one place that says what a worker
  process and the web process are: ``orderbridge worker`` and ``serve --no-workers`` on the
  procrastinate engine (the default), ``serve`` processes on the embedded one (for comparison).
- :class:`Fleet` starts them, kills one (SIGKILL) and replaces it, and reads their CPU time from
  ``/proc``.

Why hand-written: no library starts a throw-away PostgreSQL cluster without downloading
binaries (``testing.postgresql`` wraps the same two commands but is unmaintained); the rest is the
glue of this repository's own processes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from orderbridge.sandboxes.base import free_port
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings

PG_BIN = Path(os.environ.get("ORDERBRIDGE_PG_BIN", "/usr/lib/postgresql/15/bin"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- a private PostgreSQL cluster ----------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of our own in ``root`` (a temporary directory), on a free port."""

    def __init__(self, root: Path, *, fsync: bool = True, stat_statements: bool = True) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.fsync = fsync
        self.stat_statements = stat_statements
        self.restarts = 0
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = [*(("runuser", "-u", self._user, "--") if self._user else ()), *cmd]
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=timeout)

    def start(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (set ORDERBRIDGE_PG_BIN)")
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 300",
            "shared_buffers = 128MB",
            f"fsync = {'on' if self.fsync else 'off'}",
            "log_min_messages = warning",
        ]
        if self.stat_statements:
            conf += [
                "shared_preload_libraries = 'pg_stat_statements'",
                "pg_stat_statements.max = 10000",
                "pg_stat_statements.track_utility = on",
            ]
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        self._pg_ctl("start")
        if self.stat_statements:
            self.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", action, *extra)  # fmt: skip

    def restart(self, *, immediate: bool = True) -> None:
        """Stop the server (``immediate``: as a crash — no checkpoint, every connection cut) and start it."""
        self._pg_ctl("stop", "-m", "immediate" if immediate else "fast")
        self._pg_ctl("start")
        self.restarts += 1

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._pg_ctl("stop", "-m", "fast")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/{database}", autocommit=True, connect_timeout=10
        ) as conn:
            cur = conn.execute(sql.encode())  # our own SQL text, never outside input
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, name: str, template: str | None = None) -> str:
        self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def statements(self, database: str) -> int:
        """Statements the server executed in ``database`` since the last :meth:`reset_statements`."""
        rows = self.execute(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            f"WHERE d.datname = '{database}'"
        )
        return int(rows[0][0])

    def reset_statements(self) -> None:
        self.execute("SELECT pg_stat_statements_reset()")

    def cpu_seconds(self) -> float:
        """CPU time of the whole server so far: the postmaster, its live children, and the children
        it has reaped (a closed connection's backend)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        total = _proc_cpu(pid, children=True)
        for child in _children(pid):
            total += _proc_cpu(child, children=True)
        return total


@contextlib.contextmanager
def private_postgres(*, fsync: bool = True, stat_statements: bool = True) -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="ob-pg-"))
    pg = PrivatePostgres(root, fsync=fsync, stat_statements=stat_statements)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # fields[0] is the state (3rd field of stat); utime, stime, cutime, cstime are fields 14-17
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


# --- sandboxes, one store and one account per tenant ---------------------------------------------


@dataclass
class SandboxProc:
    kind: str
    proc: subprocess.Popen[bytes]
    url: str

    def control(self, method: str, path: str, **kw: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", timeout=30, **kw)
        response.raise_for_status()
        return response.json()

    def cpu_seconds(self) -> float:
        return _proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a paused one must be able to exit
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sandbox(kind: str, *args: str, ready_timeout: float = 120.0) -> SandboxProc:
    port = free_port()
    cmd = [sys.executable, "-m", "orderbridge.cli.main", "sandbox", kind, "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox {kind} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_sandbox/state", timeout=1).status_code == 200:
                return SandboxProc(kind, proc, url)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sandbox {kind} did not start within {ready_timeout}s")
        time.sleep(0.1)


@dataclass
class TenantWorld:
    """One tenant: its slug, its Shopify store and ShipStation account, and their credentials."""

    index: int
    slug: str
    shop: SandboxProc
    warehouse: SandboxProc
    token: str
    webhook_secret: str
    api_key: str
    api_secret: str
    tenant_id: int = 0
    shop_id: int = 0
    warehouse_id: int = 0

    def key(self, order_id: int | str) -> str:
        """The ShipStation ``orderKey`` the hub gives this tenant's Shopify order."""
        return f"ob-{self.shop_id}-{order_id}"


def start_tenants(
    count: int,
    *,
    orders: int = 0,
    limits: bool = True,
    ship_after: float = 86400.0,
    webhook_drop_rate: float = 0.0,
    seed: int = 1,
    extra_warehouse: tuple[str, ...] = (),
) -> list[TenantWorld]:
    """``count`` tenants' sandboxes, started in parallel: store ``i`` holds ``orders`` generated
    orders (clean ones: each is downloadable), and every credential is the tenant's own."""

    def one(i: int) -> TenantWorld:
        token, secret = f"shpat_t{i}_{os.urandom(6).hex()}", f"shpss_t{i}_{os.urandom(6).hex()}"
        key, key_secret = f"sskey_t{i}_{os.urandom(6).hex()}", f"sssec_t{i}_{os.urandom(6).hex()}"
        limit = () if limits else ("--no-limits",)
        shop = start_sandbox(
            "shopify", "--orders", str(orders), "--seed", str(seed + i), "--no-realistic", "--access-token", token,
            "--api-secret", secret, "--webhook-drop-rate", str(webhook_drop_rate), "--webhook-retry-scale", "0.01",
            *limit,
        )  # fmt: skip
        warehouse = start_sandbox(
            "shipstation",
            "--ship-after",
            str(ship_after),
            "--api-key",
            key,
            "--api-secret",
            key_secret,
            *limit,
            *extra_warehouse,
        )
        return TenantWorld(i, f"tenant-{i}", shop, warehouse, token, secret, key, key_secret)

    with ThreadPoolExecutor(max_workers=min(8, count)) as pool:
        return list(pool.map(one, range(count)))


def configure_tenants(hub: Hub, worlds: list[TenantWorld], *, bulk_backfill: bool = True) -> None:
    """Each world's tenant with its two connections and the mappings that make every order downloadable."""
    for world in worlds:
        scope = add_tenant(hub, world.slug, f"Tenant {world.index}")
        world.tenant_id = scope.tenant_id
        shop = add_connection(
            scope, "shop", "shopify", world.shop.url,
            {"access_token": world.token, "api_secret": world.webhook_secret}, {"bulk_backfill": bulk_backfill},
        )  # fmt: skip
        warehouse = add_connection(
            scope, "warehouse", "shipstation", world.warehouse.url,
            {"api_key": world.api_key, "api_secret": world.api_secret},
        )  # fmt: skip
        world.shop_id, world.warehouse_id = shop.id, warehouse.id
        for sku, _title, _price in generator.CATALOG:
            set_mapping(scope, "sku", sku, sku, warehouse.id)
        set_mapping(scope, "shipping", "*", "ups:ups_ground", warehouse.id)


def scope_of(hub: Hub, world: TenantWorld) -> Scope:
    return Scope.named(hub, world.slug)


def stop_tenants(worlds: list[TenantWorld]) -> None:
    for world in worlds:
        world.shop.stop()
        world.warehouse.stop()


# --- the hub's processes -------------------------------------------------------------------------


def web_command(port: int, tick: float, engine: str) -> list[str]:
    """The web process: webhooks, the portal, /healthz. On procrastinate it runs no job
    (``serve --no-workers``); on the embedded engine it is ``serve`` with its runtime, and so also
    the first of the W workers."""
    cmd = [sys.executable, "-m", "orderbridge.cli.main", "serve", "--port", str(port), "--tick", str(tick)]
    return [*cmd, "--no-workers"] if engine == "procrastinate" else cmd


def worker_command(index: int, tick: float, engine: str) -> list[str]:
    """One worker process: ``orderbridge worker`` (procrastinate), or on the embedded engine a
    ``serve --no-http`` beside the web process."""
    if engine == "procrastinate":
        return [sys.executable, "-m", "orderbridge.cli.main", "worker", "--name", f"w{index}"]
    return [sys.executable, "-m", "orderbridge.cli.main", "serve", "--no-http", "--tick", str(tick)]


@dataclass
class Fleet:
    """The web process and the worker processes of one hub, with their logs in ``log_dir``."""

    env: dict[str, str]
    log_dir: Path
    workers: int
    #: ``procrastinate`` (``orderbridge worker`` processes) or ``embedded`` (``serve`` processes)
    engine: str = "procrastinate"
    tick: float = 0.5
    port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    _spawned: int = 0
    _cpu_done: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        self._spawned += 1
        log = (self.log_dir / f"{name}-{self._spawned}.log").open("wb")
        env = {**os.environ, **self.env, "ORDERBRIDGE_PUBLIC_URL": self.url, "ORDERBRIDGE_JOB_ENGINE": self.engine}
        env.pop("ORDERBRIDGE_CRASH_AT", None)
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start(self, *, ready_timeout: float = 90.0) -> None:
        self.web = self._spawn(web_command(self.port, self.tick, self.engine), "web")
        extra = self.workers - 1 if self.web_runs_jobs else self.workers
        self.procs = [self._spawn(worker_command(i, self.tick, self.engine), "worker") for i in range(extra)]
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.web.poll() is not None:
                raise RuntimeError(f"the web process exited with {self.web.returncode}: see {self.log_dir}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web process did not answer within {ready_timeout}s: see {self.log_dir}")
            time.sleep(0.2)

    @property
    def web_runs_jobs(self) -> bool:
        """Whether the web process runs jobs too (the embedded engine's ``serve``): then the W
        workers are the web process and W-1 more."""
        return self.engine == "embedded"

    def job_processes(self) -> list[subprocess.Popen[bytes]]:
        return ([self.web] if self.web_runs_jobs and self.web is not None else []) + self.procs

    def kill_one(self, index: int) -> None:
        """SIGKILL worker ``index`` (of :meth:`job_processes`) and start its replacement."""
        victims = self.job_processes()
        victim = victims[index % len(victims)]
        self._cpu_done += _proc_cpu(victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.kills += 1
        if victim is self.web:
            self.start_web_again()
        else:
            self.procs[self.procs.index(victim)] = self._spawn(worker_command(index, self.tick, self.engine), "worker")

    def start_web_again(self) -> None:
        self.web = self._spawn(web_command(self.port, self.tick, self.engine), "web")

    def cpu_seconds(self) -> float:
        """CPU time the hub's processes have used (the killed ones' up to their death)."""
        alive = [p for p in [self.web, *self.procs] if p is not None]
        return self._cpu_done + sum(_proc_cpu(p.pid) for p in alive)

    def web_cpu_seconds(self) -> float:
        """CPU time of the (live) web process: the webhook receiver's share."""
        return _proc_cpu(self.web.pid) if self.web is not None else 0.0

    def stop(self) -> None:
        for proc in [*self.procs, self.web]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.procs, self.web]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def hub_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a fleet process reads its settings from."""
    return {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "ORDERBRIDGE_DATA_DIR": str(settings.data_dir),
        **extra,
    }
