"""The operator's command line on each database: catalogue review, keys, status, exit codes."""

import json
import uuid

from click.testing import CliRunner

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
    assert apikeys.scopes_of(key) == frozenset({"send"})
    prefix = key.split("_")[1]
    assert run("apikey", "revoke", prefix) == (0, "revoked 1 key(s)\n")
    assert apikeys.scopes_of(key) is None
    assert run("apikey", "create", "x", "--scope", "root")[0] == 2
