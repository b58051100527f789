"""Structured logging (structlog) to stderr: key=value for people, JSON for machines.

Services bind ``tenant_id``, ``connection_id``/``connection`` and ``order_id`` where they apply,
so every line about an order or a connection can be found by id.

Log values often carry channel text (an order number, a destination's error message). The
key=value renderer writes them to a terminal, so :func:`_plain_values` first shows their control
characters as visible escapes (the rule of :mod:`orderbridge.terminal`); a traceback keeps its
line breaks. The JSON renderer needs no such step: JSON escapes every control character.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, WrappedLogger

from orderbridge.terminal import clean


def _plain_values(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = clean(value, newlines=key in ("exception", "stack"))
    return event_dict


def configure(level: str = "INFO", json: bool = False) -> None:
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    logging.basicConfig(stream=sys.stderr, level=lvl, format="%(message)s")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *(() if json else (_plain_values,)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
