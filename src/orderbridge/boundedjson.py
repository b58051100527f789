"""JSON from outside the hub, parsed within declared limits: refused with a named reason, never a crash.

A webhook body is the one place where bytes someone else chose are parsed whole. The standard
parser recurses once per nesting level, so ``[[[[…]]]]`` a few thousand deep raises
``RecursionError`` — which used to surface as a 500 the channel retries for ever. It also accepts
``NaN``/``Infinity``, lone UTF-16 surrogates (a ``str`` that cannot be encoded again) and integers
of any size (which neither orjson, the ledger's JSON writer, nor a ``BIGINT`` column can hold).
:func:`loads` therefore runs three cheap passes, each making the next safe:

1. ``orjson.loads``: strict RFC 8259 — valid UTF-8, no surrogates, no BOM, no ``NaN``, numbers
   finite — and a hard nesting cap of its own (1,024), so it never recurses without bound;
2. one iterative walk over the result (no recursion) checks the declared :class:`JsonLimits`:
   nesting depth, the number of values, members per object or array, key and string lengths (a
   U+0000 is let through: the validation layer holds an order carrying one by name, and the
   ledger stores it safely — refusing it here would leave the same order stored from a poll and
   refused from its webhook);
3. the standard parser, now known to be shallow, builds the value the hub keeps: integers exact
   (orjson would turn one beyond 64 bits into a float), checked to fit a signed 64-bit integer
   (and every other number to lie within ±2⁶³, since the mapper reads counts with ``int()``),
   and an object with a repeated key refused — parsers disagree on which copy wins, and the
   signature covers the bytes, not one parser's reading of them.

Every refusal is a :class:`JsonRefused` (an :class:`~orderbridge.errors.InvalidInput`, and a
``ValueError`` for callers that expect one) whose message names the limit and what was found, so
the channel's delivery log tells its developer exactly what to change. Shaped as a module of its
own beside :mod:`orderbridge.exactjson` because any future receiver (another channel, the
portal's API) needs the same gate; the domain's per-field limits come after it, not here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from orderbridge.errors import InvalidInput

#: the range of a signed 64-bit integer: PostgreSQL ``BIGINT``, SQLite ``INTEGER``, orjson's writer
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
#: a number with a fraction or exponent must be smaller than this in magnitude: read as a count or
#: an id (``int(1e308)``), a larger one would overflow the same columns and writer
FLOAT_MAX = float(2**63)


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Structural limits on one JSON document; generous for a real order, small for an attack.

    A Shopify REST order nests about seven levels deep (order → line item → tax line →
    ``price_set`` → ``shop_money`` → amount) and holds a few thousand values for a large order.
    """

    #: nesting of objects and arrays (the top-level value is level 1)
    max_depth: int = 32
    #: every value in the document: objects, arrays, strings, numbers, literals
    max_values: int = 500_000
    #: members of one object, or items of one array
    max_members: int = 20_000
    #: characters of one object key
    max_key_chars: int = 256
    #: characters of one string value
    max_string_chars: int = 1_048_576


WEBHOOK_LIMITS = JsonLimits()


class JsonRefused(InvalidInput, ValueError):
    """The bytes are not JSON the hub accepts. ``limit`` names the limit exceeded, "" when malformed."""

    code = "json_refused"

    def __init__(self, message: str, *, limit: str = "") -> None:
        super().__init__(
            message,
            hint="Send one JSON document within the receiver's limits (docs/security.md, 'The webhook receiver').",
        )
        self.limit = limit


def loads(data: bytes, limits: JsonLimits = WEBHOOK_LIMITS) -> Any:
    """Parse ``data`` within ``limits``; :class:`JsonRefused` naming the problem otherwise."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit exceeded" in str(exc):  # orjson's own cap (1,024), far beyond ours
            raise _too_deep(limits) from None
        raise JsonRefused(f"not valid JSON: {exc}") from None
    check(value, limits)
    del value  # the walk is done: only one parsed copy of the body is alive at a time
    try:
        return json.loads(data.decode(), object_pairs_hook=_unique_keys, parse_int=_int64, parse_float=_float64)
    except ValueError as exc:
        if isinstance(exc, JsonRefused):
            raise
        raise JsonRefused(f"not valid JSON: {exc}") from None  # orjson accepted it; kept for safety


def check(value: Any, limits: JsonLimits = WEBHOOK_LIMITS) -> None:
    """Walk ``value`` (iteratively) and raise :class:`JsonRefused` at the first limit it exceeds."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > limits.max_values:
            raise JsonRefused(
                f"the JSON holds more than {limits.max_values:,} values (limit max_values)", limit="max_values"
            )
        if isinstance(item, str):
            _check_string(item, limits.max_string_chars, "string", "max_string_chars")
        elif isinstance(item, dict | list):
            if depth > limits.max_depth:
                raise _too_deep(limits)
            if len(item) > limits.max_members:
                what = "object has" if isinstance(item, dict) else "array has"
                raise JsonRefused(
                    f"a JSON {what} {len(item):,} members; the limit is {limits.max_members:,} (limit max_members)",
                    limit="max_members",
                )
            if isinstance(item, dict):
                for key, member in item.items():
                    _check_string(key, limits.max_key_chars, "key", "max_key_chars")
                    stack.append((member, depth + 1))
            else:
                stack.extend((member, depth + 1) for member in item)


def _too_deep(limits: JsonLimits) -> JsonRefused:
    return JsonRefused(f"the JSON nests deeper than {limits.max_depth} levels (limit max_depth)", limit="max_depth")


def _check_string(text: str, most: int, what: str, limit: str) -> None:
    if len(text) > most:
        raise JsonRefused(
            f"a JSON {what} of {len(text):,} characters ({text[:40]!r}…); the limit is {most:,} (limit {limit})",
            limit=limit,
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for repeated, _value in pairs:
            if repeated in seen:
                break
            seen.add(repeated)
        raise JsonRefused(
            f"the JSON object repeats the key {repeated[:60]!r}: which copy counts is ambiguous (limit unique_keys)",
            limit="unique_keys",
        )
    return result


def _int64(text: str) -> int:
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        raise JsonRefused(
            f"the JSON integer {_short(text)} does not fit in 64 bits (limit int64)",
            limit="int64",
        )
    return number


def _float64(text: str) -> float:
    number = float(text)
    if not -FLOAT_MAX < number < FLOAT_MAX:
        raise JsonRefused(
            f"the JSON number {_short(text)} is beyond ±2⁶³, which no count or id can be (limit int64)",
            limit="int64",
        )
    return number


def _short(text: str) -> str:
    return text[:30] + ("…" if len(text) > 30 else "")
