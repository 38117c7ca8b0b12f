"""Throw-away provider credentials for the mocks: an APNs .p8 key and an FCM service account."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TEAM_ID = "DEMOTEAM01"
KEY_ID = "DEMOKEY001"
TOPIC = "com.example.bank"
PROJECT_ID = "demo-project"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def write_credentials(folder: Path, fcm_token_uri: str) -> dict[str, str]:
    """Write both key files into `folder`; returns the NOTIFIER_* variables that point at them."""
    folder.mkdir(parents=True, exist_ok=True)
    apns_key = folder / "apns_key.p8"
    apns_key.write_text(_pem(ec.generate_private_key(ec.SECP256R1())))
    account = {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "client_email": f"notifier@{PROJECT_ID}.iam.gserviceaccount.com",
        "private_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "token_uri": fcm_token_uri,
    }
    fcm_file = folder / "fcm_service_account.json"
    fcm_file.write_text(json.dumps(account))
    return {
        "NOTIFIER_APNS_KEY_FILE": str(apns_key),
        "NOTIFIER_APNS_KEY_ID": KEY_ID,
        "NOTIFIER_APNS_TEAM_ID": TEAM_ID,
        "NOTIFIER_APNS_TOPIC": TOPIC,
        "NOTIFIER_FCM_SERVICE_ACCOUNT_FILE": str(fcm_file),
    }
