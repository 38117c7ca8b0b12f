"""The mock APNs refuses what real APNs refuses, in its order: here, the apns-id's form."""

from __future__ import annotations

import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from config.settings import Settings
from notifier.mock.apns import VerifiedTokens, _refusal

TOKEN = "ab" * 32
BODY = b'{"aps":{"alert":"hi"}}'


def _headers(apns_id: str) -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    signed = jwt.encode({"iss": "TEAM", "iat": 2_000_000_000}, key, "ES256", {"kid": "K"})
    return {"authorization": f"bearer {signed}", "apns-topic": "com.example", "apns-id": apns_id}


def _refused(apns_id: str) -> tuple[int, str, float | None] | None:
    headers = _headers(apns_id)
    return _refusal(headers, TOKEN, apns_id, BODY, None, Settings(), VerifiedTokens())


def test_a_canonical_uuid_is_accepted_in_either_case() -> None:
    canonical = str(uuid.uuid4())
    assert _refused(canonical) is None
    assert _refused(canonical.upper()) is None


@pytest.mark.parametrize(
    "spelled",
    [
        uuid.uuid4().hex,  # no hyphens
        "{" + str(uuid.uuid4()) + "}",  # braces
        "urn:uuid:" + str(uuid.uuid4()),  # urn prefix
        str(uuid.uuid4())[:-1],  # one digit short
        "not-a-uuid",
    ],
)
def test_an_apns_id_that_is_not_a_canonical_uuid_is_a_bad_message_id(spelled: str) -> None:
    assert _refused(spelled) == (400, "BadMessageId", None)
