"""The tracking note the WooCommerce channel writes reads back as the tracking it was written from
(decision 205: the notes read back are what makes a re-planned push send nothing twice) — numbers
with spaces, carriers with colons, with and without a URL, and a replacement note."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orderbridge.connectors.woocommerce.mapper import tracking_from_note, tracking_note
from orderbridge.domain.push_plan import Tracking

_word = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="()"), min_size=1, max_size=12)
numbers = st.lists(_word, min_size=1, max_size=4).map(" ".join)
carriers = st.one_of(st.just(""), st.lists(_word, min_size=1, max_size=3).map(" ".join))
urls = st.one_of(st.none(), _word.map(lambda p: f"https://track.example/{p}"))


@given(numbers, carriers, urls, st.one_of(st.none(), numbers))
def test_a_note_reads_back_as_its_tracking(number: str, carrier: str, url: str | None, replaces: str | None) -> None:
    written = Tracking(number, carrier, url)
    assert tracking_from_note(tracking_note(written, replaces)) == written


def test_the_examples_the_review_found() -> None:
    spaced = Tracking("1Z 999 AA1", "UPS", None)
    assert tracking_from_note(tracking_note(spaced)) == spaced
    with_url = Tracking("JD 0002 1234", "DHL Express", "https://dhl.example/t?n=JD0002")
    assert tracking_from_note(tracking_note(with_url)) == with_url
    assert tracking_from_note("Thanks for your order!") is None
