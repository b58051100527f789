"""The version rule, as a pure function: new, stale, unchanged, tie, changed — and the batch's newest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from orderbridge.domain.versions import Verdict, judge, latest, moves_forward, newer_or_equal

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=1)


def test_no_ledger_version_is_new() -> None:
    assert judge(T0, "h1", None, None) is Verdict.NEW
    assert judge(None, "h1", None, None) is Verdict.NEW


def test_an_older_version_is_stale_whatever_its_content() -> None:
    assert judge(T0, "h2", LATER, "h1") is Verdict.STALE
    assert judge(T0, "h1", LATER, "h1") is Verdict.STALE  # stale comes first: its older time is not recorded


def test_the_same_content_is_unchanged_at_any_later_or_equal_time_or_undated() -> None:
    assert judge(T0, "h1", T0, "h1") is Verdict.UNCHANGED
    assert judge(LATER, "h1", T0, "h1") is Verdict.UNCHANGED
    assert judge(None, "h1", T0, "h1") is Verdict.UNCHANGED
    assert judge(T0, "h1", None, "h1") is Verdict.UNCHANGED


def test_other_content_at_the_ledgers_own_time_is_a_tie() -> None:
    assert judge(T0, "h2", T0, "h1") is Verdict.TIE


def test_other_content_later_or_undated_is_changed() -> None:
    assert judge(LATER, "h2", T0, "h1") is Verdict.CHANGED
    assert judge(None, "h2", T0, "h1") is Verdict.CHANGED  # undated incoming: not comparable, so applied
    assert judge(T0, "h2", None, "h1") is Verdict.CHANGED  # undated ledger version: never a tie


def test_an_unchanged_version_moves_the_ledgers_time_forward_only() -> None:
    assert moves_forward(LATER, T0)
    assert moves_forward(T0, None)
    assert not moves_forward(T0, T0)
    assert not moves_forward(T0, LATER)
    assert not moves_forward(None, T0)


@dataclass
class Rec:
    external_id: str
    updated_at: datetime | None
    tag: str = ""


def test_the_batch_keeps_the_newest_version_of_each_order_in_first_seen_order() -> None:
    batch = [Rec("a", LATER, "a-new"), Rec("b", T0, "b1"), Rec("a", T0, "a-old"), Rec("b", T0, "b2")]
    kept = latest(batch)
    assert list(kept) == ["a", "b"]
    assert kept["a"].tag == "a-new"  # an older version later in the batch does not replace it
    assert kept["b"].tag == "b2"  # equal times: the later in the batch wins


def test_an_undated_version_replaces_the_one_before_it() -> None:
    assert newer_or_equal(Rec("a", None), Rec("a", LATER))
    assert newer_or_equal(Rec("a", T0), Rec("a", None))
    assert latest([Rec("a", LATER, "x"), Rec("a", None, "y")])["a"].tag == "y"


times = st.one_of(st.none(), st.integers(0, 3).map(lambda s: T0 + timedelta(seconds=s)))
hashes = st.sampled_from(["h1", "h2"])


@given(times, hashes, times, hashes)
def test_exactly_one_verdict_and_it_agrees_with_the_definitions(
    at: datetime | None, h: str, ledger_at: datetime | None, ledger_h: str
) -> None:
    verdict = judge(at, h, ledger_at, ledger_h)
    older = at is not None and ledger_at is not None and at < ledger_at
    if older:
        assert verdict is Verdict.STALE
    elif h == ledger_h:
        assert verdict is Verdict.UNCHANGED
    elif ledger_at is not None and at == ledger_at:
        assert verdict is Verdict.TIE
    else:
        assert verdict is Verdict.CHANGED
