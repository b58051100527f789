"""Settings from the environment (prefix ``ORDERBRIDGE_``), via pydantic-settings.

The secret key that encrypts connection credentials must be real outside the demo: a missing key,
the published demo key, or a key that is not a Fernet key refuses to start with a fix hint.
``orderbridge init`` writes a fresh key file (mode 0600) beside the database.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, FilePath
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderbridge.errors import SettingsError
from orderbridge.fixes import Fix, FixAction

#: The key the demo uses; refused everywhere else because it is published in this repository.
DEMO_SECRET_KEY = "b3JkZXJicmlkZ2UtZGVtby1rZXktbm90LWEtc2VjcmU="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERBRIDGE_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path(".orderbridge"), description="where the SQLite file and key file live")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    secret_key: str | None = Field(default=None, description="Fernet key encrypting credentials at rest")
    demo: bool = False
    poll_interval_s: float = Field(default=60.0, gt=0)
    shipment_poll_interval_s: float = Field(default=60.0, gt=0)
    cursor_overlap_s: float = Field(default=120.0, ge=0)
    lease_ttl_s: float = Field(default=120.0, gt=1)
    http_timeout_s: float = Field(default=30.0, gt=0)

    # --- job engine (docs/scaling.md; decisions 225-234) ---------------------------------------
    #: ``embedded``: ``orderbridge serve`` runs the scheduler and jobs in its own threads (SQLite or
    #: PostgreSQL, one process); ``procrastinate``: jobs are rows in PostgreSQL run by any number of
    #: ``orderbridge worker`` processes, and ``serve --no-workers`` only serves HTTP
    job_engine: str = Field(default="embedded", pattern="^(embedded|procrastinate)$")
    #: jobs one ``orderbridge worker`` runs at once (threads: the task functions are synchronous)
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    #: how often a worker writes its heartbeat, and how old one must be before its ``doing`` jobs
    #: count as stalled and are retried by the ``recover_stalled`` periodic task
    worker_heartbeat_s: float = Field(default=10.0, gt=0)
    worker_stalled_after_s: float = Field(default=30.0, gt=0)
    #: seconds between the periodic dispatcher's passes (due syncs, the posting sweep, Sync now
    #: requests nobody took); a divisor of 60 (procrastinate's cron has a seconds column)
    worker_tick_s: int = Field(default=5, ge=1, le=60)
    #: a webhook delivery defers one sync of its channel this many seconds later (a storm of
    #: deliveries within it is one pending sync: the job's ``queueing_lock``)
    webhook_sync_delay_s: float = Field(default=10.0, ge=0)
    #: under the procrastinate engine, where a verified webhook delivery is ingested: ``job`` (it is
    #: stored ``queued`` and the connection's ``ingest`` job takes every queued delivery as one batch,
    #: so the web process only checks and stores; decision 241) or ``request`` (inside the request, as
    #: the embedded runtime always does)
    webhook_ingest: str = Field(default="job", pattern="^(request|job)$")
    #: keep finished jobs in ``procrastinate_jobs`` (tests, investigations); off: a successful job's
    #: row is deleted when it ends (failed ones stay, for the operator)
    worker_keep_jobs: bool = False
    #: after a fulfilment push whose answer was lost (or a process killed while sending it), the channel
    #: is only read, never written, for this long: a request still running there is found, not repeated
    unknown_outcome_settle_s: float = Field(default=60.0, ge=0)
    #: issue #16: pushes held for the channel's state (transition_not_allowed, action_not_supported)
    #: planned again from a fresh read of the channel by each push run, at most this many per run
    replan_held_per_run: int = Field(default=100, ge=0)
    #: a POS destination's held orders are checked again at most this often (issue #17, decision
    #: 211) — at once when the connection checks' outcome or the connection's settings changed
    preflight_recheck_s: float = Field(default=30.0, ge=0)
    log_level: str = "INFO"
    log_json: bool = False
    #: the tenant (its slug) the CLI's commands act for, unless ``--tenant`` names another; services
    #: never read it — they are given a scope (decision 80)
    tenant: str = Field(default="default", min_length=1, max_length=64)

    # --- hub HTTP server (webhook receivers, /healthz, /metrics) --------------------------------
    #: the address channels and people reach the hub at: webhook subscriptions and alert links use it
    public_url: str = Field(default="http://127.0.0.1:8000", description="externally reachable base URL of the hub")
    #: subscribe channels that support webhooks to ``{public_url}/webhooks/{kind}/{connection}``
    webhooks: bool = True
    #: the largest webhook body the receiver reads, in bytes; a larger one is answered 413 before it
    #: is read (Content-Length first, else a running count), so its signature is never checked.
    #: 5 MiB: typical order webhooks are 5-50 KB; this leaves room for orders of hundreds of lines.
    webhook_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=64 * 1024)

    # --- completeness: reconciliation audits and connection health -------------------------------
    reconcile_recent_every_s: float = Field(default=3600.0, gt=0, description="hourly audit …")
    reconcile_recent_window_s: float = Field(default=72 * 3600.0, gt=0, description="… of the last 72 hours")
    reconcile_full_every_s: float = Field(default=86400.0, gt=0, description="daily audit …")
    reconcile_full_window_s: float = Field(default=60 * 86400.0, gt=0, description="… of the last 60 days")
    #: consecutive transient failures after which a connection is ``failing`` rather than ``degraded``
    failing_after: int = Field(default=5, ge=1)
    #: a channel is ``silent`` when no order arrived for ``silent_factor`` × its usual gap …
    silent_factor: float = Field(default=10.0, gt=1)
    #: … and at least this long (so a quiet night in a small shop is not an alarm)
    silent_min_s: float = Field(default=6 * 3600.0, gt=0)
    #: orders needed before a channel's usual gap is known (no silent alerts before that)
    silent_min_orders: int = Field(default=20, ge=2)

    # --- notifications -------------------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_tls: str = Field(default="none", pattern="^(none|starttls|ssl)$")
    #: PEM file of the CA(s) that sign the SMTP server's certificate, for a relay with a private CA
    #: (the system's trust store otherwise); the certificate and its host name are always verified
    smtp_ca_file: FilePath | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "orderbridge@localhost"
    #: let a tenant's own webhook targets (set in the portal) be loopback, private or link-local
    #: addresses; off by default, so an account's admin cannot make the hub call its internal network
    alert_webhook_allow_private: bool = False
    #: comma-separated e-mail addresses that receive alerts and the digest
    alert_recipients: str = ""
    #: comma-separated URLs that receive alerts as signed JSON POSTs
    alert_webhook_urls: str = ""
    #: HMAC-SHA256 key for ``X-OrderBridge-Signature`` on outgoing alert webhooks
    alert_webhook_secret: str | None = None
    digest_every_s: float = Field(default=86400.0, gt=0)

    # --- portal sign-in (services/auth.py; decision 91) ------------------------------------------
    #: a bearer token for the operations endpoints: when set, ``/metrics`` needs it and ``/healthz``
    #: shows its per-connection detail only with it (without it: the overall status alone, for a
    #: load balancer); unset, both are open — fit for a hub listening on 127.0.0.1 only
    ops_token: str | None = Field(default=None, min_length=16)
    #: a portal session ends this long after sign-in, however busy (12 h: a working day)
    session_max_age_s: float = Field(default=12 * 3600.0, gt=0)
    #: … and after this long without a request (2 h)
    session_idle_s: float = Field(default=2 * 3600.0, gt=0)
    #: argon2id's parameters (RFC 9106's low-memory choice); a stored hash made with others is
    #: replaced at the next sign-in. Only tests should lower them (a hash then costs ~1 ms, not ~0.1 s)
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=64 * 1024, ge=64)
    password_parallelism: int = Field(default=4, ge=1, le=16)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'orderbridge.db').as_posix()}"

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.alert_recipients.split(",") if a.strip()]

    @property
    def webhook_targets(self) -> list[str]:
        return [u.strip() for u in self.alert_webhook_urls.split(",") if u.strip()]

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def resolved_secret_key(self) -> str:
        """The encryption key, or :class:`SettingsError` saying exactly how to provide one."""
        key = self.secret_key
        if key is None and self.key_file.exists():
            from orderbridge.files import tighten

            tighten(self.key_file)  # a key file others can read is narrowed to 0600, with a warning
            key = self.key_file.read_text().strip()
        if key is None:
            if self.demo:
                return DEMO_SECRET_KEY
            raise SettingsError(
                "no secret key: connection credentials cannot be encrypted",
                hint="Initialise OrderBridge (it writes .orderbridge/secret.key), or set ORDERBRIDGE_SECRET_KEY "
                "to a newly generated key.",
                fix=Fix.of(FixAction.INIT, "Initialise OrderBridge: it writes a secret key file."),
            )
        if key == DEMO_SECRET_KEY and not self.demo:
            raise SettingsError(
                "the secret key is the published demo key",
                hint="Generate a real key and set ORDERBRIDGE_SECRET_KEY to it.",
                fix=Fix.of(FixAction.GENERATE_KEY, "Generate a real secret key."),
            )
        return key
