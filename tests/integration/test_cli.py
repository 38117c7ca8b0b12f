"""The operator's command line on each database: catalogue review, keys, status, exit codes."""

import json
import uuid

from click.testing import CliRunner

from config.settings import get_settings
from notifier.cli import main
from notifier.store import migrate


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_db_upgrade_reports_head(migrated):
    code, out = run("db", "upgrade")
    head = migrate.head_revision()
    assert code == 0 and f"revision {head}" in out
    assert run("db", "current") == (0, f"{head}\n")


def test_template_review_lifecycle(migrated):
    code, _ = run("sms", "template", "add", "OTP", "--kind", "verification", "--content", "${c}")
    assert code == 0
    assert json.loads(run("sms", "template", "list")[1])[0]["status"] == "pending"
    assert run("sms", "template", "reject", "OTP")[0] == 2  # click: --reason is required
    assert run("sms", "template", "reject", "OTP", "--reason", "unclear")[0] == 0
    assert json.loads(run("sms", "template", "list")[1])[0]["reject_reason"] == "unclear"
    assert run("sms", "template", "approve", "OTP") == (0, "template OTP approved\n")


def test_bad_input_is_one_line_and_exit_2(migrated):
    code, out = run("sms", "template", "add", "T", "--kind", "verification", "--content", "no var")
    assert code == 2 and "error: content: a verification template has exactly one variable" in out
    assert run("sms", "signature", "approve", "Nobody")[0] == 2
    code, out = run("status", "not-a-uuid")
    assert code == 2 and "message_id: must be a UUID" in out
    code, out = run("status", str(uuid.uuid4()))
    assert code == 2 and "not found" in out


def test_api_keys_are_shown_once_and_revocable(migrated):
    from notifier.store import apikeys

    code, key = run("apikey", "create", "ops", "--scope", "send")
    key = key.strip()
    assert code == 0 and key.startswith("nk_")
    assert apikeys.caller_of(key) == apikeys.Caller(frozenset({"send"}), None)
    prefix = key.split("_")[1]
    assert run("apikey", "revoke", prefix) == (0, "revoked 1 key(s)\n")
    assert apikeys.caller_of(key) is None
    assert run("apikey", "create", "x", "--scope", "root")[0] == 2


def test_an_api_process_trusts_a_looked_up_key_for_the_cache_ttl(migrated, env):
    from sqlalchemy import update

    from notifier.store import apikeys
    from notifier.store.db import transaction
    from notifier.store.models import ApiKey
    from notifier.store.repo import utcnow

    key = apikeys.create_key("app", ["device"])
    assert apikeys.caller_of(key) is not None

    def revoke_elsewhere() -> None:  # as another process (the CLI) would
        with transaction() as session:
            session.execute(update(ApiKey).values(revoked_at=utcnow()))

    revoke_elsewhere()
    assert apikeys.caller_of(key) is not None  # cached: within NOTIFIER_API_KEY_CACHE_SECONDS
    env.setenv("NOTIFIER_API_KEY_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    assert apikeys.caller_of(key) is None  # asked again: revoked
    again = apikeys.create_key("app2", ["device"])
    assert apikeys.caller_of(again) is not None
    revoke_elsewhere()
    assert apikeys.caller_of(again) is None  # TTL 0: every request asks


def test_device_keys_can_be_bound_to_one_user(migrated):
    from notifier.store import apikeys

    code, key = run("apikey", "create", "app-ann", "--scope", "device", "--user", "ann")
    assert code == 0
    assert apikeys.caller_of(key.strip()) == apikeys.Caller(frozenset({"device"}), "ann")
    code, out = run("apikey", "create", "x", "--scope", "send", "--user", "ann")
    assert code == 2 and "scope device alone" in out


def test_messages_are_found_by_user_and_state(migrated):
    from notifier import producer

    producer.bind_device("eve", "apns", "ee" * 32)
    first = producer.send("eve", policy="push_only", push={"body": "one"})
    second = producer.send("eve", policy="push_only", push={"body": "two"})
    code, out = run("messages", "--user", "eve", "--state", "accepted")
    assert code == 0
    assert [m["id"] for m in json.loads(out)["items"]] == [str(second), str(first)]
    assert json.loads(run("messages", "--user", "eve", "--state", "failed")[1])["items"] == []
    code, out = run("messages", "--state", "lost")
    assert code == 2 and "state: one of accepted" in out


def test_stats_reports_rates_parts_and_errors(migrated):
    from tests.helpers import approved_catalogue

    approved_catalogue("Bank", {"NOTE": ("notification", "Statement ${n} is ready.")})
    from notifier import producer

    producer.bind_device("fay", "apns", "ff" * 32, "+8613800138000")
    producer.send(
        "fay",
        push={"body": "hi"},
        sms={"template": "NOTE", "params": {"n": "1"}, "signature": "Bank"},
    )
    code, out = run("stats", "--since", "1h", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["messages"] == {"accepted": 1}
    assert figures["channels"]["push"]["deliveries"] == 1
    assert figures["fallback"]["supplement_messages"] == 1
    code, out = run("stats", "--since", "an hour")
    assert code == 2 and "--since: a window like 30m" in out
    assert run("stats")[0] == 0
