"""``orderbridge bench portal``: how fast the portal's pages answer over a ledger of N orders.

Each database — a SQLite file, and PostgreSQL when it is reachable (the ``test`` database on
127.0.0.1:5432, in a schema of its own dropped afterwards), or the one ``--database-url`` names —
is seeded with a realistic ledger, then each page is timed ``repeats`` times, the pages taken in
turn, each sample with parameters drawn afresh (another connection, reason, number, customer,
SKU, depth), so a p95 covers the spread of what people ask and not one cached answer.

**The seed** goes through the ledger's own writers (``storage/repos``), in transactions of
:data:`BATCH` orders, as ingest and posting write: orders by ``orders.insert_new`` (so
``orders.email`` and ``order_skus`` are written as ingest writes them), their ``received`` events,
the reasons of held and skipped orders, a posting per posted order (reserved, then recorded
posted, with its attempt) and the state moves ``ready → posted → fulfilled | cancelled`` with
their events. Proportions: two tenants (nine orders in ten in the first), three channels and a
3PL in the first, one of each in the second; 1–4 lines an order (2.4 on average) over a catalogue
of 5,000 SKUs whose popularity falls off as a power law (the best seller is in ~1 order in 10);
about three orders per customer; creation times spread over two years; 3 % held — SKUs the 3PL
does not know (five of them), a missing shipping address, an unmapped shipping method, a
rejection —, 1 % skipped, 0.5 % ready, 0.3 % cancelled, the rest posted (a quarter) or fulfilled.
Shipments and fulfilment pushes are not seeded (the inbox does not read them).

On PostgreSQL the seeded tables are ``VACUUM ANALYZE``-d before timing, as autovacuum does after
a bulk load; SQLite gets no ``ANALYZE`` (the hub never runs one), so its figures are the query
planner's without statistics — what a SQLite install gets.

**The pages** are timed over real HTTP: the portal served by uvicorn on a free port in this
process, a viewer of the first tenant signed in through the login form (a real session cookie),
each page fetched whole (the full HTML a browser loads): the inbox's first page, filtered by state
and connection, by hold reason, searched by number, by e-mail and by SKU, a deep page (a cursor at
a random order of the ledger: what page 10,000 costs), the order page and the dashboard. Then the
same views' service calls are timed alone (``services`` in the JSON: what the database and the
read model cost, without the template and the HTTP round trip).
"""

from __future__ import annotations

import contextlib
import random
import re
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url

from orderbridge.crypto import generate_key
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import canonical_hash, order_to_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, FulfilmentStatus, Order, OrderLine, PaymentStatus, ShippingLine
from orderbridge.domain.roles import Role
from orderbridge.domain.states import OrderState
from orderbridge.errors import Conflict
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services import auth
from orderbridge.services.connections import add_connection
from orderbridge.services.dashboard import compact as fold_tallies
from orderbridge.services.dashboard import dashboard as dashboard_of
from orderbridge.services.hub import Hub
from orderbridge.services.inbox import Sort, inbox, make_cursor, parse_query
from orderbridge.services.order_story import order_story
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from orderbridge.storage.db import dump_json
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.repos.events import event_row
from orderbridge.storage.repos.orders import ORDER_COLUMNS, Move
from orderbridge.storage.tables import orders, tenants
from orderbridge.web.app import create_app

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 5_000
PAGES = (
    "inbox_first",
    "inbox_state_connection",
    "inbox_hold_reason",
    "search_number",
    "search_email",
    "search_sku",
    "inbox_deep",
    "order_page",
    "dashboard",
)
TENANTS = (
    ("bench-a", 0.9, ("shop-eu", "shop-us", "wholesale"), (0.45, 0.4, 0.15)),
    ("bench-b", 0.1, ("boutique",), (1,)),
)
CATALOGUE = 5_000
UNMAPPED = tuple(f"NEW-{k}" for k in range(101, 106))
#: the hold reasons the seed writes, as the inbox's filter takes them (code, value)
SEEDED_REASONS: list[tuple[str, str | None]] = [
    *(("sku_unmapped", v) for v in UNMAPPED),
    ("required_field_missing", None),
    ("shipping_method_unmapped", None),
    ("destination_rejected", None),
]
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Eli", "Fatou", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Moe", "Nia")
_SURNAMES = ("Martin", "Okafor", "Dubois", "Sato", "Novak", "Silva", "Berg", "Kowalski", "Haddad", "Moreau")


# --- the seed ------------------------------------------------------------------------------------


@dataclass
class _Tenant:
    scope: Scope
    channels: list[int]
    weights: tuple[float, ...]
    destination: int
    orders: int
    customers: int


@dataclass
class Seeded:
    """What the timing draws its parameters from (per tenant: the first, the big one)."""

    scope: Scope
    channels: list[int]
    numbers: list[str] = field(default_factory=list)
    #: channel ids of the same orders (a number is per channel: three shops each have a #1001)
    refs: list[str] = field(default_factory=list)
    #: ledger ids of orders spread over the tenant's (where deep pages start)
    ids: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    reasons: list[tuple[str, str | None]] = field(default_factory=list)
    orders: int = 0


class _Seeder:
    """Writes a tenant's orders through the ledger's writers, BATCH orders a transaction."""

    def __init__(self, hub: Hub, rng: random.Random) -> None:
        self.hub = hub
        self.rng = rng
        self.sku_weights = list(accumulate(1 / (k**0.8) for k in range(1, CATALOGUE + 1)))
        self.skus = [f"SKU-{k:05d}" for k in range(1, CATALOGUE + 1)]
        self.prices = [Decimal(5 + (k * 7919) % 120) + Decimal("0.99") for k in range(CATALOGUE)]
        self.number = 1000

    def tenant(
        self, slug: str, share: float, names: tuple[str, ...], weights: tuple[float, ...], total: int
    ) -> _Tenant:
        scope = add_tenant(self.hub, slug, slug.replace("-", " ").title())
        channels = [
            add_connection(scope, name, "shopify", f"https://{name}.example", {"access_token": "shpat_bench"}).id
            for name in names
        ]
        destination = add_connection(
            scope, "warehouse", "shipstation", "https://ssapi.example", {"api_key": "k", "api_secret": "s"}
        ).id
        n = max(1, round(total * share))
        return _Tenant(scope, channels, weights, destination, n, max(1, n // 3))

    def seed(self, t: _Tenant, advance: Callable[[int], None]) -> None:
        numbers = dict.fromkeys(t.channels, 1000)
        step = SPAN / t.orders
        for start in range(0, t.orders, BATCH):
            chunk = range(start, min(t.orders, start + BATCH))
            made = []
            for i in chunk:
                channel = self.rng.choices(t.channels, t.weights)[0]
                numbers[channel] += 1
                created = START + step * i + timedelta(seconds=self.rng.randint(0, 59))
                made.append(self._order(t, channel, numbers[channel], created))
            self._write(t, made)
            advance(len(made))

    def _order(self, t: _Tenant, channel: int, number: int, created: datetime) -> _Made:
        rng = self.rng
        n_lines = rng.choices((1, 2, 3, 4), (20, 35, 30, 15))[0]
        picked = dict.fromkeys(rng.choices(range(CATALOGUE), cum_weights=self.sku_weights, k=n_lines))
        fate = rng.random()
        state, reason = self._fate(fate)
        lines = [
            OrderLine(f"L{k}", self.skus[s], f"Product {s}", rng.randint(1, 3), Money(self.prices[s], "EUR"))
            for k, s in enumerate(picked)
        ]
        if reason is not None and reason.code == "sku_unmapped":
            lines.append(OrderLine("LX", reason.value, "New product", 1, Money(Decimal("19.99"), "EUR")))
        subtotal = sum((li.unit_price.amount * li.quantity for li in lines), Decimal(0))
        customer = rng.randrange(t.customers)
        first, last = _NAMES[customer % len(_NAMES)], _SURNAMES[customer // len(_NAMES) % len(_SURNAMES)]
        email = f"{first.lower()}.{last.lower()}.{customer}@example.com"
        if customer % 9 == 0:
            email = email.capitalize()  # some channels keep what the customer typed
        no_address = reason is not None and reason.code == "required_field_missing"
        address = Address(
            f"{first} {last}",
            address1=f"{customer % 200} Rue Haute",
            city="Lyon",
            postal_code="69001",
            country_code="FR",
        )
        method = "Express Overnight" if reason is not None and reason.code == "shipping_method_unmapped" else "Standard"
        order = Order(
            external_id=str(5_000_000_000 + channel * 10_000_000 + number),
            number=f"#{number}",
            currency="EUR",
            created_at=created,
            updated_at=created + timedelta(minutes=rng.randint(1, 600)),
            payment_status=PaymentStatus.PAID,
            fulfilment_status=FulfilmentStatus.UNFULFILLED,
            email=email,
            customer_name=f"{first} {last}",
            lines=tuple(lines),
            shipping_lines=(ShippingLine(method, method.lower().replace(" ", "_"), Money(Decimal("4.90"), "EUR")),),
            subtotal=Money(subtotal, "EUR"),
            total_tax=Money.zero("EUR"),
            total=Money(subtotal + Decimal("4.90"), "EUR"),
            shipping_address=None if no_address else address,
            billing_address=address,
            tags=("bench",),
            raw={},
        )
        return _Made(channel, order, state, reason)

    def _fate(self, x: float) -> tuple[OrderState, R.Reason | None]:
        """What became of an order: its final state and the reason it is held or skipped."""
        if x < 0.03:
            y = x / 0.03
            if y < 0.5:
                return OrderState.HELD, R.sku_unmapped(UNMAPPED[int(y * 10) % len(UNMAPPED)], "warehouse")
            if y < 0.75:
                return OrderState.HELD, R.required_field_missing("shipping_address", "warehouse")
            if y < 0.9:
                return OrderState.HELD, R.shipping_method_unmapped("Express Overnight", "warehouse")
            return OrderState.HELD, R.destination_rejected("warehouse", "The postal code does not match the city.")
        if x < 0.04:
            return OrderState.SKIPPED, R.financial_status_not_downloaded("pending", frozenset({"paid"}))
        if x < 0.045:
            return OrderState.READY, None
        if x < 0.048:
            return OrderState.CANCELLED, None
        if x < 0.29:
            return OrderState.POSTED, None
        return OrderState.FULFILLED, None

    def _write(self, t: _Tenant, made: list[_Made]) -> None:
        tenant_id = t.scope.tenant_id
        rows, skus = [], []
        for m in made:
            o = m.order
            canonical = order_to_json(o)
            first = OrderState.HELD if m.state is OrderState.HELD else OrderState.SKIPPED
            start = first if m.state in (OrderState.HELD, OrderState.SKIPPED) else OrderState.READY
            received = o.created_at + timedelta(seconds=3)
            values = {
                "tenant_id": tenant_id,
                "connection_id": m.channel,
                "external_id": o.external_id,
                "state": start.value,
                "version": 1,
                "received_at": received,
                "updated_at": received,
                "number": o.number,
                "content_hash": canonical_hash(canonical),
                "channel_created_at": o.created_at,
                "channel_updated_at": o.updated_at,
                "currency": o.currency,
                "total": o.total.amount,
                "canonical": dump_json(canonical),
                "raw": dump_json(_raw(o)),
                "email": order_repo.email_key(o.email),
            }
            rows.append(tuple(values[c] for c in ORDER_COLUMNS))
            skus.append(order_repo.skus_of_lines([li.sku for li in o.lines]))
        with self.hub.db.transaction() as conn:
            ids = {ext: int(oid) for oid, ext in order_repo.insert_new(conn, rows, skus)}
            events, reasons = [], []
            to_post: list[tuple[int, _Made]] = []
            for m in made:
                oid = ids[m.order.external_id]
                received = m.order.created_at + timedelta(seconds=3)
                verdict = m.state.value if m.state in (OrderState.HELD, OrderState.SKIPPED) else "ready"
                why = f": {m.reason.message}" if m.reason is not None else ""
                events.append(
                    event_row(
                        tenant_id, oid, EventKind.RECEIVED, received, f"received {m.order.number} — {verdict}{why}"
                    )
                )
                if m.reason is not None:
                    kind = reason_repo.HOLD if m.state is OrderState.HELD else reason_repo.SKIP
                    reasons.append(reason_repo.reason_row(tenant_id, oid, kind, m.reason, received))
                if m.state in (OrderState.POSTED, OrderState.FULFILLED, OrderState.CANCELLED):
                    to_post.append((oid, m))
            event_log.append(conn, events)
            reason_repo.add(conn, reasons)
            self._post(conn, t, to_post)

    def _post(self, conn: Any, t: _Tenant, to_post: list[tuple[int, _Made]]) -> None:
        """A posting each, recorded posted, and the moves to posted and beyond with their events."""
        if not to_post:
            return
        tenant_id, dest = t.scope.tenant_id, t.destination
        at = max(m.order.created_at for _, m in to_post) + timedelta(minutes=2)
        keys = {oid: f"{oid}:{dest}:v1" for oid, _ in to_post}
        pids = posting_repo.reserve(
            conn, tenant_id, dest, [(oid, 1, keys[oid], f"ob-{m.order.external_id}") for oid, m in to_post], at
        )
        documents = {oid: str(80_000_000 + oid) for oid, _ in to_post}
        posting_repo.record(
            conn,
            tenant_id,
            [(pids[keys[oid]], documents[oid]) for oid, _ in to_post],
            [],
            [(pids[keys[oid]], "posted", "accepted", None) for oid, _ in to_post],
            at,
        )
        posted = [
            Move(
                oid,
                OrderState.READY,
                OrderState.POSTED,
                (event_row(tenant_id, oid, EventKind.POSTED, at, f"posted to warehouse as document {documents[oid]}"),),
            )
            for oid, _ in to_post
        ]
        order_repo.transition(conn, posted, at)
        later = at + timedelta(days=1)
        onward = [
            Move(
                oid,
                OrderState.POSTED,
                m.state,
                (event_row(tenant_id, oid, EventKind(m.state.value), later, f"{m.state.value} at the channel"),),
            )
            for oid, m in to_post
            if m.state is not OrderState.POSTED
        ]
        order_repo.transition(conn, onward, later)


@dataclass(frozen=True)
class _Made:
    channel: int
    order: Order
    state: OrderState
    reason: R.Reason | None


def _raw(o: Order) -> dict[str, Any]:
    """A channel payload of the usual shape and size (~1 KB): what the order page pretty-prints."""
    return {
        "id": int(o.external_id),
        "name": o.number,
        "email": o.email,
        "created_at": o.created_at.isoformat() if o.created_at else None,
        "currency": o.currency,
        "financial_status": "paid",
        "fulfillment_status": None,
        "total_price": str(o.total.amount),
        "customer": {"first_name": o.customer_name.split(" ")[0], "last_name": o.customer_name.split(" ")[-1]},
        "line_items": [
            {"id": k, "sku": li.sku, "title": li.title, "quantity": li.quantity, "price": str(li.unit_price.amount)}
            for k, li in enumerate(o.lines)
        ],
        "shipping_lines": [{"title": s.title, "price": str(s.price.amount)} for s in o.shipping_lines],
        "tags": "bench",
    }


def seed(hub: Hub, orders_total: int, *, progress: Callable[[int], None], seed_value: int = 13) -> None:
    """Seed the ledger of ``hub`` (migrated, without the bench's tenants) with ``orders_total`` orders."""
    seeder = _Seeder(hub, random.Random(seed_value))
    for slug, share, names, weights in TENANTS:
        seeder.seed(seeder.tenant(slug, share, names, weights, orders_total), progress)


def reuse(hub: Hub, orders_total: int) -> Seeded | None:
    """The bench ledger in ``hub``'s database (seeded now or by an earlier run), or None: what the
    timing draws from — 2,000 orders spread over the first tenant's (numbers, channel ids, e-mails)."""
    with hub.db.read() as conn:
        tenant_id = conn.execute(select(tenants.c.id).where(tenants.c.slug == "bench-a")).scalar_one_or_none()
        if tenant_id is None:
            return None
        found = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        if found != orders_total:
            raise RuntimeError(f"the database holds a bench ledger of {found} orders, not {orders_total}: use another")
    scope = Scope.of(hub, int(tenant_id))
    with scope.read() as conn:
        channels = [c.id for c in scope.connections(conn) if c.role.value == "channel"]
        sample = conn.execute(
            select(orders.c.number, orders.c.canonical["email"].as_string(), orders.c.external_id, orders.c.id)
            .where(orders.c.tenant_id == scope.tenant_id, orders.c.id % max(1, orders_total // 2_500) == 0)
            .limit(2_000)
        ).all()
    return Seeded(
        scope,
        channels,
        numbers=[r[0] for r in sample],
        refs=[r[2] for r in sample],
        emails=[r[1] for r in sample if r[1]],
        ids=[int(r[3]) for r in sample],
        reasons=SEEDED_REASONS,
        orders=orders_total,
    )


# --- the pages -----------------------------------------------------------------------------------

#: a viewer of the first tenant, who signs in through the login form to time the pages over HTTP
VIEWER_EMAIL = "viewer@bench-a.example.com"
VIEWER_PASSWORD = "a bench of quiet orders"


@dataclass(frozen=True)
class _View:
    """One page view with its parameters drawn: the service call it makes and its address."""

    call: Callable[[], Any]
    path: str


def _views(s: Seeded, rng: random.Random) -> dict[str, Callable[[], _View]]:
    """Each page as a draw of fresh parameters (one draw = one page view)."""
    scope = s.scope
    states = [OrderState.HELD, OrderState.POSTED, OrderState.FULFILLED, OrderState.READY, OrderState.SKIPPED]
    sku_weights = list(accumulate(1 / (k**0.8) for k in range(1, CATALOGUE + 1)))

    def listed(params: dict[str, str]) -> _View:
        query = parse_query(params)
        return _View(lambda: inbox(scope, query), "/orders?" + urlencode(params) if params else "/orders")

    def first() -> _View:
        return listed({})

    def state_connection() -> _View:
        return listed({"state": rng.choice(states).value, "connection_id": str(rng.choice(s.channels))})

    def hold_reason() -> _View:
        code, value = rng.choice(s.reasons)
        return listed({"reason": code, **({} if value is None else {"reason_value": value})})

    def number() -> _View:
        n = rng.choice(s.numbers)
        return listed({"q": n if rng.random() < 0.8 else n[:-1]})  # exact, or a prefix

    def email() -> _View:
        e = rng.choice(s.emails)
        return listed({"q": e.upper() if rng.random() < 0.3 else e})

    def sku() -> _View:
        k = rng.choices(range(1, CATALOGUE + 1), cum_weights=sku_weights)[0]
        return listed({"q": f"SKU-{k:05d}", "search": "sku"})

    def deep() -> _View:
        with scope.read() as conn:  # one primary-key read, untimed: where the page starts
            row = conn.execute(
                select(orders.c.id, orders.c.placed_at).where(
                    orders.c.id == rng.choice(s.ids), orders.c.tenant_id == scope.tenant_id
                )
            ).one()
        return listed({"cursor": make_cursor(Sort.NEWEST, False, row.placed_at, int(row.id))})

    def order_page() -> _View:
        oid = rng.choice(s.ids)
        return _View(lambda: order_story(scope, oid), f"/orders/{oid}")

    def dashboard() -> _View:
        return _View(lambda: dashboard_of(scope), "/dashboard")

    return {
        "inbox_first": first,
        "inbox_state_connection": state_connection,
        "inbox_hold_reason": hold_reason,
        "search_number": number,
        "search_email": email,
        "search_sku": sku,
        "inbox_deep": deep,
        "order_page": order_page,
        "dashboard": dashboard,
    }


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _figures(samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(_percentile(ms, 0.95), 2),
            "max_ms": round(max(ms), 2),
            "samples": len(ms),
        }
        for name, ms in samples.items()
    }


def time_pages(
    s: Seeded, repeats: int, *, client: httpx.Client | None = None, warm: int = 3
) -> dict[str, dict[str, Any]]:
    """Each page ``repeats`` times (after ``warm`` untimed rounds), the pages taken in turn: over
    HTTP with ``client`` (a signed-in session; each answer must be a 200), else the service calls."""
    draws = _views(s, random.Random(29))
    samples: dict[str, list[float]] = {name: [] for name in draws}
    for round_ in range(warm + repeats):
        for name, draw in draws.items():
            view = draw()
            started = time.perf_counter()
            if client is None:
                view.call()
            else:
                answer = client.get(view.path)
                answer.read()
                if answer.status_code != 200:
                    raise RuntimeError(f"{view.path} answered {answer.status_code}: {answer.text[:300]}")
            elapsed = time.perf_counter() - started
            if round_ >= warm:
                samples[name].append(elapsed * 1000)
    return _figures(samples)


def _viewer(scope: Scope) -> None:
    """The first tenant's viewer (made once: a reused ledger has it already)."""
    with contextlib.suppress(Conflict):
        auth.create_user(scope, VIEWER_EMAIL, "Bench viewer", VIEWER_PASSWORD, Role.VIEWER, by=None)


@contextlib.contextmanager
def signed_in(hub: Hub) -> Iterator[httpx.Client]:
    """The portal served over real HTTP (uvicorn on a free port, in this process) and a client
    signed in as the bench's viewer through the login form, with its session cookie."""
    app = create_app(hub)
    with run_in_thread(app) as running, httpx.Client(base_url=running.base_url, timeout=60) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if form.status_code != 200 or token is None:
            raise RuntimeError(f"the login page answered {form.status_code}")
        answer = client.post(
            "/login",
            data={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD, "csrf_token": token.group(1), "next": "/orders"},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"signing in answered {answer.status_code}: {answer.text[:300]}")
        yield client


# --- databases -----------------------------------------------------------------------------------


def _pg_reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextlib.contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    """A schema of its own in ``url``'s database, dropped afterwards; the URL that works in it."""
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(False)
    schema = f"ob_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _hub(url: str, data_dir: Path) -> Hub:
    return Hub.from_settings(Settings(data_dir=data_dir, database_url=url, secret_key=generate_key()))


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _for_seeding(hub: Hub) -> None:
    """The seed's own connections write faster and change nothing the timing reads: SQLite keeps
    256 MB of pages in memory (its default is 2 MB: every index insert would read the OS's pages),
    PostgreSQL does not wait for each commit's WAL flush."""
    hub.db.engine.dispose()

    @event.listens_for(hub.db.engine, "connect")
    def _tune(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if hub.db.dialect == "sqlite":
            cur.execute("PRAGMA cache_size=-262144")
        else:
            cur.execute("SET synchronous_commit TO off")
        cur.close()
        if hub.db.dialect == "postgresql":
            dbapi_conn.commit()


def bench_database(
    name: str, url: str, orders_total: int, repeats: int, say: Callable[[str], None], quiet: bool
) -> dict[str, Any]:
    """Seed (or reuse) one database and time the pages on it (seeded and timed by hubs of their own)."""
    result: dict[str, Any] = {"database": name}
    with tempfile.TemporaryDirectory(prefix="ob-bench-portal-") as tmp:
        hub = _hub(url, Path(tmp))
        try:
            found = reuse(hub, orders_total)
            if found is None:
                say(f"{name}: seeding {orders_total:,} orders…")
                _for_seeding(hub)
                started, cpu = time.perf_counter(), _cpu()
                with _progress(quiet, f"{name}: seed", orders_total) as advance:
                    seed(hub, orders_total, progress=advance)
                result["seed_s"] = round(time.perf_counter() - started, 1)
                # this process's own CPU time: what the seed costs whatever else the machine runs
                result["seed_cpu_s"] = round(_cpu() - cpu, 1)
                if hub.db.dialect == "postgresql":  # what autovacuum does after a bulk load
                    started = time.perf_counter()
                    with hub.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                        conn.execute(text("VACUUM ANALYZE"))
                    result["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
            else:
                say(f"{name}: reusing the bench ledger of {orders_total:,} orders in {url}")
                result["seed_s"] = None
        finally:
            hub.close()
        hub = _hub(url, Path(tmp))
        try:
            found = reuse(hub, orders_total)
            assert found is not None
            _viewer(found.scope)
            folded = _housekeep(hub)
            say(f"{name}: the housekeeping folded {folded:,} tally rows together, as a running hub's does")
            say(f"{name}: timing {len(PAGES)} pages ×{repeats} over HTTP, signed in…")
            with signed_in(hub) as client:
                result["pages"] = time_pages(found, repeats, client=client)
            say(f"{name}: timing the same pages' service calls ×{repeats}…")
            result["services"] = time_pages(found, repeats)
        finally:
            hub.close()
    return result


def _housekeep(hub: Hub) -> int:
    """Fold each bench tenant's order and reason tallies, as the housekeeping of a running hub does
    every few minutes (a seed appends a delta per batch and hour; a live ledger's are folded)."""
    with hub.db.read() as conn:
        ids = conn.execute(select(tenants.c.id).where(tenants.c.slug.in_([t[0] for t in TENANTS]))).scalars().all()
    return sum(fold_tallies(Scope.of(hub, int(tid))) for tid in ids)


@contextlib.contextmanager
def _progress(quiet: bool, label: str, total: int) -> Iterator[Callable[[int], None]]:
    if quiet:
        yield lambda n: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def run(
    *,
    orders: int = 100_000,
    repeats: int = 30,
    database_url: str | None = None,
    postgres: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    out = Console(stderr=True)

    def say(message: str) -> None:
        if not quiet:
            out.print(message)

    result: dict[str, Any] = {"orders": orders, "repeats": repeats, "databases": []}
    if database_url is not None:
        name = "postgresql" if make_url(database_url).drivername.startswith("postgres") else "sqlite"
        result["databases"].append(bench_database(name, database_url, orders, repeats, say, quiet))
        return result
    with tempfile.TemporaryDirectory(prefix="ob-bench-portal-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        result["databases"].append(bench_database("sqlite", url, orders, repeats, say, quiet))
    if postgres and _pg_reachable(PG_DEFAULT):
        with _pg_schema(PG_DEFAULT) as url:
            result["databases"].append(bench_database("postgresql", url, orders, repeats, say, quiet))
    elif postgres:
        result["databases"].append({"database": "postgresql", "skipped": f"not reachable at {PG_DEFAULT}"})
    return result


def render(result: dict[str, Any], console: Console) -> None:
    for db in result["databases"]:
        if "skipped" in db:
            console.print(f"{db['database']}: skipped ({db['skipped']})")
            continue
        seeded = "reused" if db["seed_s"] is None else f"seeded in {db['seed_s']} s"
        table = Table(title=f"portal pages — {db['database']}, {result['orders']:,} orders ({seeded})")
        table.add_column("page")
        table.add_column("HTTP p50 ms", justify="right")
        table.add_column("HTTP p95 ms", justify="right")
        table.add_column("max ms", justify="right")
        table.add_column("service p50", justify="right")
        table.add_column("service p95", justify="right")
        for name in PAGES:
            page, service = db["pages"][name], db["services"][name]
            table.add_row(
                name,
                f"{page['p50_ms']:.1f}",
                f"{page['p95_ms']:.1f}",
                f"{page['max_ms']:.1f}",
                f"{service['p50_ms']:.1f}",
                f"{service['p95_ms']:.1f}",
            )
        console.print(table)
