"""Segment counting (3GPP TS 23.038): examples and properties over random text."""

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from notifier.domain.encoding import (
    GSM7,
    GSM_BASIC,
    GSM_EXTENSION,
    UCS2,
    PriceTable,
    segment,
    unit_cost,
)

BASIC = "".join(sorted(GSM_BASIC))
EXTENSION = "".join(sorted(GSM_EXTENSION))
gsm_basic_text = st.text(alphabet=BASIC, max_size=800)
gsm_text = st.text(alphabet=BASIC + EXTENSION, max_size=800)
any_text = st.text(max_size=600)


def test_single_gsm_message_boundary():
    assert segment("a" * 160).count == 1
    assert segment("a" * 161).count == 2
    assert [len(p) for p in segment("a" * 161).parts] == [153, 8]


def test_extension_characters_count_twice():
    s = segment("€" * 80)
    assert (s.encoding, s.units, s.count) == (GSM7, 160, 1)
    assert segment("€" * 81).count == 2


def test_extension_character_never_straddles_a_part():
    s = segment("a" * 152 + "€" + "a" * 10)
    assert s.parts[0] == "a" * 152  # the € would need septets 153 and 154: it moves on
    assert s.parts[1].startswith("€")


def test_one_non_gsm_character_makes_everything_ucs2():
    assert segment("a" * 69 + "é").encoding == GSM7  # é is in the GSM alphabet
    s = segment("a" * 69 + "ł")
    assert (s.encoding, s.count) == (UCS2, 1)
    assert segment("a" * 70 + "ł").count == 2
    assert [len(p) for p in segment("a" * 70 + "ł").parts] == [67, 4]


def test_chinese_and_emoji():
    assert segment("验证码" * 23 + "码").count == 1  # 70 characters
    emoji = segment("😀" * 35)  # each is two UTF-16 units
    assert (emoji.units, emoji.count) == (70, 1)
    assert segment("😀" * 36).count == 2


def test_empty_text_has_no_parts():
    assert segment("").count == 0


@given(gsm_basic_text)
def test_basic_gsm_count_formula(text):
    s = segment(text)
    assert s.encoding == GSM7
    expected = 0 if not text else 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert s.count == expected


@given(any_text)
def test_parts_rebuild_the_text_and_respect_limits(text):
    s = segment(text)
    assert "".join(s.parts) == text
    single, per_part = (160, 153) if s.encoding == GSM7 else (70, 67)
    sizes = [sum(unit_cost(ch, s.encoding) for ch in part) for part in s.parts]
    assert sum(sizes) == s.units
    if s.count > 1:
        assert all(size <= per_part for size in sizes)
        assert s.count >= math.ceil(s.units / per_part)
        # greedy: every part but the last is full but for at most one wide character
        assert all(size >= per_part - 1 for size in sizes[:-1])
    else:
        assert s.units <= single


@given(gsm_text)
def test_units_are_septets_with_extension_doubled(text):
    s = segment(text)
    assert s.units == len(text) + sum(1 for ch in text if ch in GSM_EXTENSION)


@given(gsm_text, st.sampled_from("łżЖ中😀"))
def test_any_foreign_character_switches_to_ucs2(text, foreign):
    assert segment(text + foreign).encoding == UCS2


def test_price_table_longest_prefix_wins():
    table = PriceTable.parse("+86=0.045, +861=0.04, +1=0.0079, *=0.05")
    assert table.per_part("+8613800138000") == Decimal("0.04")
    assert table.per_part("+8620000000") == Decimal("0.045")
    assert table.per_part("+447700900123") == Decimal("0.05")
    assert table.cost("+14155550123", 3) == Decimal("0.0237")
