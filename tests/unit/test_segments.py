import pytest

from notifier.domain.errors import InvalidInput
from notifier.domain.segments import Segment, parse_segment, version


def test_filters_and_user_ids_parse_and_round_trip():
    raw = {"tags": ["vip", "vip", "beta"], "platform": "apns", "locale": "pt-BR"}
    segment = parse_segment(raw)
    assert segment.tags == ("vip", "beta") and segment.locale == "pt-br"
    assert parse_segment(segment.to_json()) == segment


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "segment"),
        ({"all": True, "tags": ["x"]}, "segment"),
        ({"tags": "vip"}, "segment.tags"),
        ({"tags": ["a b"]}, "segment.tags[0]"),
        ({"platform": "wap"}, "segment.platform"),
        ({"user_ids": []}, "segment.user_ids"),
        ({"user_ids": ["ok", "not ok"]}, "segment.user_ids[1]"),
        ({"app_version_min": "two"}, "segment.app_version_min"),
        ({"country": "NL"}, "segment.country"),
        ("everyone", "segment"),
    ],
)
def test_bad_segments_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        parse_segment(raw)
    assert err.value.field == field


def test_everyone_must_be_said_out_loud():
    assert parse_segment({"all": True}) == Segment(everyone=True)


def test_versions_compare_as_numbers():
    assert version("2.10") > version("2.9.9")
    segment = parse_segment({"app_version_min": "2.10"})
    assert segment.admits("apns", None, "2.10.0")
    assert not segment.admits("apns", None, "2.9.12")
    assert not segment.admits("apns", None, None)


def test_locale_matches_by_prefix_whatever_the_separator():
    segment = parse_segment({"locale": "en"})
    assert segment.admits("fcm", "en_US", None) and segment.admits("fcm", "en-GB", None)
    assert not segment.admits("fcm", "de-DE", None)


def test_a_locale_asked_with_an_underscore_reaches_both_spellings():
    segment = parse_segment({"locale": "pt_BR"})
    assert segment.locale == "pt-br"
    assert segment.admits("fcm", "pt_BR", None) and segment.admits("fcm", "pt-br", None)
    assert not segment.admits("fcm", "ptXbr", None)  # no character stands for another
