"""A push worker signs its provider tokens when it starts, not on its first push."""

from __future__ import annotations

import logging
from dataclasses import replace

from notifier.providers.gateway import PushGateway
from notifier.providers.transport import Http2Transport
from tests.unit.test_apns import CREDS
from tests.unit.test_fcm import ACCOUNT, FakeTokenEndpoint

# Nothing listens on the discard port: a token request there is refused at once.
AWAY = replace(ACCOUNT, token_uri="http://127.0.0.1:9/token")


def gateway() -> PushGateway:
    return PushGateway(Http2Transport(10, 1.0), "http://127.0.0.1:9", CREDS, "http://t", AWAY)


def test_warming_signs_the_apns_token_and_fetches_the_fcm_one():
    g = gateway()
    endpoint = FakeTokenEndpoint()
    assert g.fcm_token is not None and g.apns_token is not None
    g.fcm_token._http = endpoint  # type: ignore[assignment]
    g.warm()
    assert g.apns_token.signed == 1 and len(endpoint.calls) == 1
    g.warm()  # a warm gateway keeps its tokens
    assert g.apns_token.signed == 1 and len(endpoint.calls) == 1
    g.transport.close()


def test_a_token_endpoint_away_at_start_is_left_to_the_first_push(caplog):
    g = gateway()
    with caplog.at_level(logging.WARNING):
        g.warm()
    assert "FCM access token not fetched at start" in caplog.text
    assert g.apns_token is not None and g.apns_token.signed == 1
    g.transport.close()
