"""The mocks keep the latest requests they received, and count them all."""

from __future__ import annotations

import gc
import json

import pytest

from notifier.mock.config import MockConfig
from notifier.mock.fleet import Recorder


def test_the_recorder_keeps_the_latest_requests_and_counts_all():
    recorder = Recorder(keep=3)
    for n in range(5):
        recorder.add(token=f"t{n}", status=200)
    assert [i["token"] for i in recorder.query(None, None)] == ["t2", "t3", "t4"]
    assert recorder.query("token", "t4")[0]["status"] == 200
    assert recorder.query("token", "t0") == []
    assert recorder.total == 5
    assert recorder.forget() == 3
    assert (recorder.total, recorder.query(None, None)) == (0, [])


def test_a_record_reads_back_as_received_and_is_nothing_the_collector_walks():
    recorder = Recorder(keep=10)
    payload = {"aps": {"alert": {"title": "Hi", "body": "é ✓"}}, "nid": "d-1", "n": [1, 2.5]}
    recorder.add(token="t", status=200, payload=payload, headers={"apns-id": "a"}, none=None)
    [record] = recorder.query("token", "t")
    assert isinstance(record.pop("received_at"), float)
    assert record == {
        "token": "t",
        "status": 200,
        "payload": payload,
        "headers": {"apns-id": "a"},
        "none": None,
    }
    assert not any(gc.is_tracked(kept) for kept in recorder.items)


def test_how_many_to_keep_is_a_positive_whole_number(monkeypatch):
    monkeypatch.setenv("NOTIFIER_MOCK_KEEP_RECEIVED", "250")
    assert MockConfig.from_env().keep_received == 250
    monkeypatch.delenv("NOTIFIER_MOCK_KEEP_RECEIVED")
    assert MockConfig.from_env().keep_received == 100_000
    for bad in ("0", "-1", "lots"):
        monkeypatch.setenv("NOTIFIER_MOCK_KEEP_RECEIVED", bad)
        with pytest.raises(ValueError, match="NOTIFIER_MOCK_KEEP_RECEIVED must be a whole"):
            MockConfig.from_env()


def test_a_request_received_while_the_records_are_read_does_not_break_the_read(monkeypatch):
    recorder = Recorder(keep=10)
    recorder.add(token="t0")
    recorder.add(token="t1")
    decode = json.loads

    def arriving(text: str) -> object:  # the event loop adds a record mid-read
        if recorder.total == 2:
            recorder.add(token="t2")
        return decode(text)

    monkeypatch.setattr("notifier.mock.fleet.json.loads", arriving)
    assert [r["token"] for r in recorder.query(None, None)] == ["t0", "t1"]
    assert recorder.total == 3


def test_a_push_reads_back_as_received_and_the_collector_lets_go_of_it():
    recorder = Recorder(keep=10)
    message = {"token": "t", "data": {"nid": "d-1"}, "notification": {"body": "é ✓"}}
    recorder.push(json.dumps({"message": message}).encode(), "message", token="t", status=200)
    recorder.push(b'{"aps": {}, "nid": "d-2"}', "", {"apns-id": "a"}, token="u", nid=None)
    recorder.push(b"{not json", "", {}, token="v", status=400)
    fcm, apns, broken = recorder.query(None, None)
    assert isinstance(fcm.pop("received_at"), float)
    assert fcm == {"token": "t", "status": 200, "payload": message}
    assert (apns["payload"], apns["headers"], apns["nid"]) == (
        {"aps": {}, "nid": "d-2"},
        {"apns-id": "a"},
        None,
    )
    assert (broken["payload"], broken["headers"]) == (None, {})
    assert recorder.query("token", "u") == [apns] and recorder.total == 3
    gc.collect(0)  # a young collection lets go of what holds nothing it must watch
    assert not any(gc.is_tracked(kept) for kept in recorder.items)
