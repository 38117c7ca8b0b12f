"""Push bodies spliced from a template are the documents encoded whole, byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from notifier.providers import apns, fcm
from notifier.providers.json_template import HOLES, JsonTemplate
from notifier.providers.push_job import PushJob

EXPIRES = datetime.now(UTC) + timedelta(hours=1)


def job(**fields: object) -> PushJob:
    base: dict[str, object] = {
        "delivery_id": "0b5015e0-1111-4222-8333-444455556666", "platform": "fcm",
        "token": "dev:" + "a" * 40, "title": "Sale", "body": "Everything \u00e9 \"half\"",
        "expires_at": EXPIRES, "data": {"deep_link": "app://x"},
    }  # fmt: skip
    return PushJob(**{**base, **fields})  # type: ignore[arg-type]


def whole_fcm(j: PushJob) -> bytes:
    return json.dumps(fcm.message_body(j), separators=(",", ":"), ensure_ascii=False).encode()


class _Stopped(datetime):
    """A clock that stands still: both encodings must see the same TTL (on a slow run the
    second ticked between them, 3596s against 3595s)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Stopped:
        return cls.fromtimestamp(STOPPED_AT, tz)


STOPPED_AT = EXPIRES.timestamp() - 1800.5


def fcm_pair(j: PushJob) -> tuple[bytes, bytes]:
    """The spliced and the whole FCM body of a job, encoded at the same instant."""
    with patch.object(fcm, "datetime", _Stopped):
        return fcm.encoded(j), whole_fcm(j)


def test_holes_are_filled_in_document_order_whatever_their_numbers():
    template = JsonTemplate.of({"b": HOLES[1], "a": HOLES[0]}, 2)
    assert template is not None
    assert json.loads(template.fill("first", "second")) == {"b": "second", "a": "first"}


def test_a_document_holding_a_hole_marker_itself_has_no_template():
    assert JsonTemplate.of({"a": HOLES[0], "b": HOLES[0]}, 1) is None
    assert JsonTemplate.of({"a": "x"}, 1) is None


@given(
    title=st.text(max_size=30),
    body=st.text(max_size=60),
    data=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
    token=st.text(min_size=1, max_size=20),
    background=st.booleans(),
    collapse=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
)
def test_fcm_bodies_match_the_whole_encoding(title, body, data, token, background, collapse):
    j = job(title=title, body=body, data=data, token=token, background=background,
            collapse_id=collapse)  # fmt: skip
    spliced, whole = fcm_pair(j)
    assert spliced == whole


@given(
    title=st.text(max_size=30),
    body=st.text(max_size=60),
    data=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
    background=st.booleans(),
)
def test_apns_payloads_decode_to_the_document(title, body, data, background):
    j = job(platform="apns", title=title, body=body, data=data, background=background)
    alert = {k: v for k, v in (("title", title), ("body", body)) if v}
    aps = {"content-available": 1} if background else {"alert": alert, "sound": "default"}
    assert json.loads(apns.payload(j)) == {"aps": aps, **data, "nid": j.delivery_id}


def test_a_payload_carrying_a_marker_or_a_nested_value_is_encoded_whole():
    marked = job(data={"x": HOLES[0]})
    assert fcm_pair(marked)[0] == fcm_pair(marked)[1]
    assert json.loads(apns.payload(marked))["x"] == HOLES[0]
    nested = job(data={"x": {"y": "z"}})
    assert fcm_pair(nested)[0] == fcm_pair(nested)[1]
    assert json.loads(apns.payload(nested))["x"] == {"y": "z"}
