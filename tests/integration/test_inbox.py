"""The inbox on each database: newest first, cursor pages, unread count, mark read."""

import pytest

from notifier import inbox, producer
from notifier.domain.errors import InvalidInput
from tests.helpers import approved_catalogue


@pytest.fixture
def sent(migrated):
    approved_catalogue("Bank", {"NOTE": ("notification", "Statement ${n} is ready.")})
    producer.bind_device("ann", "apns", "ab" * 32, "+8613800138000")
    ids = []
    for n in range(5):
        sms = {"template": "NOTE", "params": {"n": str(n)}, "signature": "Bank"}
        ids.append(producer.send("ann", push={"title": f"Statement {n}"}, sms=sms))
    return [str(i) for i in ids]


def test_newest_first_in_pages_with_unread_count(sent):
    first = inbox.page("ann", limit=2)
    assert [i["message_id"] for i in first["items"]] == sent[::-1][:2]
    assert first["unread"] == 5 and first["next_cursor"]
    second = inbox.page("ann", limit=2, cursor=first["next_cursor"])
    last = inbox.page("ann", limit=2, cursor=second["next_cursor"])
    seen = [i["message_id"] for page in (first, second, last) for i in page["items"]]
    assert seen == sent[::-1] and last["next_cursor"] is None
    assert first["items"][0]["title"] == "Statement 4"
    assert first["items"][0]["sms_text"] == "[Bank]Statement 4 is ready."


def test_mark_read_and_mark_all(sent):
    assert inbox.mark_read("ann", [sent[0], sent[1]]) == 2
    assert inbox.mark_read("ann", [sent[0]]) == 0  # already read
    assert inbox.page("ann")["unread"] == 3
    assert inbox.mark_read("ann", None) == 3
    page = inbox.page("ann")
    assert page["unread"] == 0 and all(i["read"] for i in page["items"])


def test_other_users_messages_are_not_marked(sent):
    producer.bind_phone("bob", "+8613800138001")
    assert inbox.mark_read("bob", sent) == 0
    assert inbox.page("bob") == {"items": [], "unread": 0, "next_cursor": None}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: inbox.page("ann", limit=0), "limit"),
        (lambda: inbox.page("ann", cursor="garbage!"), "cursor"),
        (lambda: inbox.mark_read("ann", ["nope"]), "message_ids"),
        (lambda: inbox.page("bad user"), "user_id"),
    ],
)
def test_bad_input_names_the_field(sent, call, field):
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field
