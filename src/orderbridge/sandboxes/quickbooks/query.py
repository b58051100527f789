"""The subset of QBO's SQL-like query language the sandbox answers (``GET /query?query=…``).

``SELECT * | COUNT(*) FROM <Entity> [WHERE <field> <op> <value> [AND …]] [ORDERBY <field> [ASC|DESC]]
[STARTPOSITION n] [MAXRESULTS n]`` — operators ``=``, ``<``, ``>``, ``<=``, ``>=``, ``LIKE`` (``%``
wildcards) and ``IN ( … )``; values are quoted with ``'`` (``\\'`` escapes one), or bare numbers and
booleans; fields may be dotted (``MetaData.LastUpdatedTime``, ``PrimaryEmailAddr`` compares its
``Address``). Keywords are case-insensitive, as in QBO; ``MAXRESULTS`` is at most 1000. Anything
else is answered with QBO's ``QueryValidationError`` (code 4000). Hand-written because no library
speaks this dialect; it is small on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_HEAD = re.compile(r"\s*select\s+(\*|count\(\s*\*\s*\))\s+from\s+(\w+)\s*", re.I)
_COND = re.compile(r"([\w.]+)\s*(<=|>=|=|<|>|\blike\b|\bin\b)\s*", re.I)
_VALUE = re.compile(r"'((?:[^'\\]|\\.)*)'|(-?\d+(?:\.\d+)?)|(true|false)\b", re.I)
MAX_RESULTS = 1000


class QueryError(ValueError):
    """The query cannot be read (QBO: 400 QueryValidationError)."""


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool
    where: tuple[tuple[str, str, Any], ...]
    order_by: tuple[str, bool] | None
    start: int
    max_results: int


def parse(text: str) -> Query:
    head = _HEAD.match(text)
    if head is None:
        raise QueryError(f"Error parsing query: expected SELECT * FROM <entity>, got {text[:80]!r}")
    count = head.group(1) != "*"
    entity = head.group(2)
    rest = text[head.end() :]
    where: list[tuple[str, str, Any]] = []
    if re.match(r"where\s", rest, re.I):
        rest = rest[5:].lstrip()
        while True:
            cond = _COND.match(rest)
            if cond is None:
                raise QueryError(f"Error parsing query near {rest[:40]!r}")
            field, op = cond.group(1), cond.group(2).lower()
            rest = rest[cond.end() :]
            if op == "in":
                if not rest.startswith("("):
                    raise QueryError("IN needs a parenthesised list")
                close = rest.find(")")
                if close < 0:
                    raise QueryError("IN list is not closed")
                values = [_value(v.strip())[0] for v in _split(rest[1:close])]
                where.append((field, op, values))
                rest = rest[close + 1 :].lstrip()
            else:
                value, used = _value(rest)
                where.append((field, op, value))
                rest = rest[used:].lstrip()
            if re.match(r"and\s", rest, re.I):
                rest = rest[3:].lstrip()
                continue
            break
    order_by = None
    match = re.match(r"orderby\s+([\w.]+)(?:\s+(asc|desc))?\s*", rest, re.I)
    if match:
        order_by = (match.group(1), (match.group(2) or "asc").lower() == "desc")
        rest = rest[match.end() :]
    start, max_results = 1, 100
    match = re.match(r"startposition\s+(\d+)\s*", rest, re.I)
    if match:
        start = int(match.group(1))
        rest = rest[match.end() :]
    match = re.match(r"maxresults\s+(\d+)\s*", rest, re.I)
    if match:
        max_results = int(match.group(1))
        rest = rest[match.end() :]
    if rest.strip():
        raise QueryError(f"Error parsing query near {rest.strip()[:40]!r}")
    if max_results > MAX_RESULTS or start < 1:
        raise QueryError(f"MAXRESULTS may be at most {MAX_RESULTS} and STARTPOSITION at least 1")
    return Query(entity, count, tuple(where), order_by, start, max_results)


def _split(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for i, ch in enumerate(text):
        if ch == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _value(text: str) -> tuple[Any, int]:
    match = _VALUE.match(text)
    if match is None:
        raise QueryError(f"Error parsing query: expected a value near {text[:40]!r}")
    if match.group(1) is not None:
        return re.sub(r"\\(.)", r"\1", match.group(1)), match.end()
    if match.group(2) is not None:
        return match.group(2), match.end()
    return match.group(3).lower() == "true", match.end()


def _field(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = next((v for k, v in node.items() if k.lower() == part.lower()), None)
    if isinstance(node, dict):  # a reference or an e-mail: compared by its value / address
        node = node.get("value", node.get("Address"))
    return node


def _like(pattern: str, value: str) -> bool:
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("%")) + "$"
    return re.match(regex, value, re.I | re.S) is not None


def matches(doc: dict[str, Any], where: tuple[tuple[str, str, Any], ...]) -> bool:
    for field, op, wanted in where:
        value = _field(doc, field)
        if isinstance(value, bool) or isinstance(wanted, bool):
            if op != "=" or bool(value) is not wanted:
                return False
            continue
        text = "" if value is None else str(value)
        if op == "=" and text != wanted:
            return False
        if op == "like" and not _like(str(wanted), text):
            return False
        if op == "in" and text not in [str(w) for w in wanted]:
            return False
        if op in ("<", ">", "<=", ">="):
            left: Any = text
            right: Any = str(wanted)
            if _number(text) and _number(right):
                left, right = float(text), float(right)
            if not {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]:
                return False
    return True


def _number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(?:\.\d+)?", text) is not None


def run(query: Query, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [d for d in docs if matches(d, query.where)]
    if query.order_by is not None:
        path, descending = query.order_by
        found.sort(key=lambda d: str(_field(d, path) or ""), reverse=descending)
    return found
