"""``GET /dashboard``: the tenant's ledger at a glance, refreshed in place every five seconds.

The page is ``dashboard.html``; everything under its heading is the partial
``dashboard/_live.html``, which htmx fetches again every 5 s (``hx-trigger="every 5s"`` on the
partial's own root, so the refreshed fragment keeps refreshing) — an order that posts moves from
"Ready" to "Posted" without a reload. Without JavaScript the page is the same, read once.

The orders-per-hour chart is SVG drawn here, on the server (no chart library, no script): one
stacked bar per hour of the orders received in it, coloured by the state each is in now, with a
``<title>``/``<desc>`` and the same figures as a table beside it for screen readers and for
anyone who prefers numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_time, format_timedelta
from fastapi import APIRouter, Request
from fastapi.responses import Response

from orderbridge.services.dashboard import Dashboard, HourCount, dashboard
from orderbridge.services.deadlines import approaching
from orderbridge.web import causes as cause_words
from orderbridge.web import i18n
from orderbridge.web.causes import number
from orderbridge.web.deps import Viewer
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

#: how the chart groups the states, bottom to top: (css class, states)
SERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("done", ("posted", "fulfilled", "closed")),
    ("waiting", ("received", "ready")),
    ("problem", ("held",)),
    ("other", ("skipped", "cancelled")),
)
SERIES_LABELS = {
    "done": i18n.N_("Posted, fulfilled or closed"),
    "waiting": i18n.N_("Waiting to post"),
    "problem": i18n.N_("Held"),
    "other": i18n.N_("Skipped or cancelled"),
}

#: a connection's health, in words (``services/health.py`` names the states)
HEALTH = {
    "healthy": i18n.N_("Healthy"),
    "degraded": i18n.N_("Degraded"),
    "failing": i18n.N_("Failing"),
    "silent": i18n.N_("Silent"),
    "unknown": i18n.N_("Not checked yet"),
}


def health_label(health: str) -> str:
    text = HEALTH.get(health)
    return i18n.gettext(text) if text else health


def span(seconds: float | None) -> str:
    """A duration in words ("3 minutes"); empty when unknown."""
    if seconds is None:
        return ""
    return format_timedelta(timedelta(seconds=round(seconds)), locale=i18n.current_locale(), threshold=1.1)


@dataclass(frozen=True)
class Segment:
    series: str
    y: float
    height: float
    orders: int


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    hour: datetime
    label: str
    orders: int
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    peak: int
    bars: list[Bar]
    #: y-axis marks: (y, label)
    ticks: list[tuple[float, str]]
    #: hour labels under the bars: (x, label)
    marks: list[tuple[float, str]]
    total: int
    summary: str


def chart(hours: list[HourCount]) -> Chart:
    """The stacked bars of the last hours, in SVG user units (the SVG scales to its box)."""
    width, height, top, bottom, left = 720, 200, 10, 24, 40
    plot_h = height - top - bottom
    peak = max((h.orders for h in hours), default=0)
    scale_max = _nice(peak)
    step = (width - left) / max(1, len(hours))
    bars = []
    for i, h in enumerate(hours):
        y = float(top + plot_h)
        segments = []
        for series, states in SERIES:
            n = sum(h.by_state.get(s, 0) for s in states)
            if n:
                tall = plot_h * n / scale_max
                y -= tall
                segments.append(Segment(series, round(y, 2), round(tall, 2), n))
        label = format_time(h.hour, "HH:mm", locale=i18n.current_locale())
        bars.append(Bar(round(left + i * step + 1, 2), round(step - 2, 2), h.hour, label, h.orders, segments))
    ticks = [(round(top + plot_h - plot_h * f, 2), number(round(scale_max * f))) for f in (0, 0.5, 1)]
    marks = [(round(b.x + b.width / 2, 2), b.label) for i, b in enumerate(bars) if i % 6 == 0]
    total = sum(h.orders for h in hours)
    busiest = max(bars, key=lambda b: b.orders, default=None)
    summary = i18n.gettext(
        "%(total)s orders received in the last %(hours)s hours; the busiest hour, %(hour)s UTC, had %(peak)s.",
        total=number(total),
        hours=len(hours),
        hour=busiest.label if busiest else "",
        peak=number(busiest.orders if busiest else 0),
    )
    return Chart(width, height, top, bottom, left, peak, bars, ticks, marks, total, summary)


def _nice(peak: int) -> int:
    """The chart's top: the peak rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if peak <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= peak:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if peak <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def context(board: Dashboard) -> dict[str, object]:
    return {
        "board": board,
        "causes": board.causes,
        "more_causes": max(0, board.causes_total - len(board.causes)),
        "chart": chart(board.hours),
        "series": [(key, i18n.gettext(SERIES_LABELS[key])) for key, _states in SERIES],
        "num": number,
        "span": span,
        "headline": cause_words.headline,
        "cause_href": cause_words.query,
        "health_label": health_label,
    }


@router.get("/dashboard")
def dashboard_page(request: Request, actor: Viewer) -> Response:
    board = dashboard(actor.scope)
    # issue #16: orders approaching a channel's acceptance or shipping deadline, the soonest first
    near = approaching(actor.scope, limit=20)
    return templates_of(request).render(
        request, "dashboard.html", {**context(board), "deadlines": near}, partial="dashboard/_live.html"
    )
