"""`notifier` command line: database, API keys, SMS catalogue, status, servers, the demo."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from config.settings import get_settings
from notifier.domain.errors import NotifierError

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes: 0 ok, 1 the job ran and something was not as expected, 2 bad input / not found.
EXIT_INPUT = 2


def _friendly(func: F) -> F:
    """Turn our own errors into one clear line and exit code 2 instead of a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NotifierError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INPUT)

    return wrapper  # type: ignore[return-value]


def _uuid_arg(raw: str, name: str) -> uuid.UUID:
    from notifier.domain.errors import InvalidInput

    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(name, "must be a UUID") from None


@click.group()
def main() -> None:
    """Push notifications with SMS fallback."""
    from notifier import logs

    logs.install()


@main.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from notifier.store import migrate

    url = get_settings().db_url
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    from notifier.store import migrate

    click.echo(migrate.current_revision(get_settings().db_url) or "empty")


@main.group()
def apikey() -> None:
    """API keys (stored hashed; the key is shown once)."""


@apikey.command("create")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="device, send, carrier, admin"
)
@click.option("--user", help="bind a device key to this user: it binds and acks for them only")
@_friendly
def apikey_create(name: str, scopes: tuple[str, ...], user: str | None) -> None:
    from notifier.domain.requests import user_id
    from notifier.store import apikeys

    click.echo(apikeys.create_key(name, list(scopes), user_id(user, "user") if user else None))


@apikey.command("revoke")
@click.argument("prefix")
@_friendly
def apikey_revoke(prefix: str) -> None:
    from notifier.store import apikeys

    click.echo(f"revoked {apikeys.revoke(prefix)} key(s)")


@main.group()
def sms() -> None:
    """SMS templates and signatures."""


@sms.group()
def template() -> None:
    """Templates: add (pending), approve, reject, list."""


KINDS = click.Choice(["verification", "notification", "promotional"])


def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@template.command("add")
@click.argument("code")
@click.option("--kind", type=KINDS, default="notification", show_default=True)
@click.option("--content", required=True, help="text with ${var} placeholders")
@click.option("--max-param-length", type=int, help="longest value of one variable [35]")
@_friendly
def template_add(code: str, kind: str, content: str, max_param_length: int | None) -> None:
    """Add a template; it waits in `pending` until approved."""
    from notifier import catalog

    catalog.add_template(code, kind, content, max_param_length)
    click.echo(f"template {code} added, pending review")


@template.command("edit")
@click.argument("code")
@click.option("--kind", type=KINDS)
@click.option("--content")
@click.option("--max-param-length", type=int)
@_friendly
def template_edit(
    code: str, kind: str | None, content: str | None, max_param_length: int | None
) -> None:
    """Change a template; it goes back to `pending` review."""
    from notifier import catalog

    _json(catalog.edit_template(code, content, kind, max_param_length))


@sms.group()
def signature() -> None:
    """Signatures: add (pending), approve, reject, list."""


@signature.command("add")
@click.argument("name")
@_friendly
def signature_add(name: str) -> None:
    from notifier import catalog

    catalog.add_signature(name)
    click.echo(f"signature {name} added, pending review")


def _review_commands(group: click.Group, kind: str) -> None:
    @group.command("approve")
    @click.argument("key")
    @_friendly
    def approve(key: str) -> None:
        from notifier import catalog

        catalog.review(kind, key, approve=True)
        click.echo(f"{kind} {key} approved")

    @group.command("reject")
    @click.argument("key")
    @click.option("--reason", required=True)
    @_friendly
    def reject(key: str, reason: str) -> None:
        from notifier import catalog

        catalog.review(kind, key, approve=False, reason=reason)
        click.echo(f"{kind} {key} rejected")

    @group.command("list")
    def list_() -> None:
        from notifier import catalog

        _json(catalog.list_templates() if kind == "template" else catalog.list_signatures())

    @group.command("show")
    @click.argument("key")
    @_friendly
    def show(key: str) -> None:
        from notifier import catalog

        _json(catalog.show_template(key) if kind == "template" else catalog.show_signature(key))


_review_commands(template, "template")
_review_commands(signature, "signature")


@sms.command("preview")
@click.argument("template_code")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--signature", required=True)
@click.option("--phone", help="destination, for the cost")
@_friendly
def sms_preview(
    template_code: str, params: tuple[str, ...], signature: str, phone: str | None
) -> None:
    """Rendered text, encoding, parts and cost of an SMS, before sending any."""
    from notifier import catalog
    from notifier.domain.errors import InvalidInput

    values = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput("--param", f"{item!r} is not NAME=VALUE")
        values[name] = value
    _json(catalog.preview(template_code, values, signature, phone))


@sms.command("optout")
@click.argument("phone")
@click.option("--remove", is_flag=True, help="opt the number back in")
@_friendly
def sms_optout(phone: str, remove: bool) -> None:
    """Stop (or with --remove, allow again) promotional SMS to PHONE."""
    from notifier import catalog

    if remove:
        click.echo("opted in" if catalog.opt_in(phone) else "was not opted out")
    else:
        click.echo(f"{catalog.opt_out(phone, 'cli')} opted out")


@main.command()
@click.argument("message_id")
@_friendly
def status(message_id: str) -> None:
    """State, deliveries, attempts and timeline of a message, as JSON."""
    from notifier.store.views import message_view

    parsed = _uuid_arg(message_id, "message_id")
    click.echo(json.dumps(message_view(parsed), indent=2, ensure_ascii=False))


@main.group()
def broadcast() -> None:
    """One push to a segment of users: send, and follow its progress."""


@broadcast.command("send")
@click.option(
    "--segment", required=True, help='JSON, e.g. \'{"tags": ["vip"], "platform": "apns"}\''
)
@click.option("--title", default="")
@click.option("--body", default="")
@click.option("--name")
@click.option("--class", "message_class", default="promotional", show_default=True)
@click.option("--ttl", type=int, help="seconds")
@_friendly
def broadcast_send(
    segment: str, title: str, body: str, name: str | None, message_class: str, ttl: int | None
) -> None:
    from notifier import broadcasts
    from notifier.domain.errors import InvalidInput

    try:
        parsed = json.loads(segment)
    except ValueError as exc:
        raise InvalidInput("--segment", f"not JSON ({exc})") from None
    payload: dict[str, Any] = {
        "segment": parsed,
        "push": {"title": title, "body": body},
        "name": name,
        "class": message_class,
    }
    if ttl is not None:
        payload["ttl"] = ttl
    _json(broadcasts.send_broadcast_payload(payload))


@broadcast.command("status")
@click.argument("broadcast_id")
@_friendly
def broadcast_status(broadcast_id: str) -> None:
    from notifier import broadcasts

    parsed = _uuid_arg(broadcast_id, "broadcast_id")
    _json(broadcasts.progress(parsed))


@main.command("stats")
@click.option("--since", default="1h", show_default=True, help="window: 30m, 1h, 7d …")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@_friendly
def stats_command(since: str, as_json: bool) -> None:
    """Delivery rate per channel, fallback rate, time to ack, SMS parts and cost, top errors."""
    from notifier import stats

    figures = stats.stats(stats.parse_window(since))
    if as_json:
        _json(figures)
        return
    click.echo(
        f"since {figures['since']}: {sum(figures['messages'].values())} messages "
        f"({figures['messages_per_second']}/s) {figures['messages']}"
    )
    for channel, c in sorted(figures["channels"].items()):
        click.echo(
            f"  {channel:5} {c['deliveries']:>8} deliveries, reached {c['reached']} "
            f"({c['reached_rate']}), {c['per_second']}/s"
        )
    fb = figures["fallback"]
    click.echo(
        f"  fallback: {fb['fell_back_to_sms']} of {fb['supplement_messages']} supplement "
        f"messages ({fb['fallback_rate']}); median time to ack "
        f"{figures['median_seconds_to_ack']} s"
    )
    for t in figures["sms_by_template"]:
        click.echo(f"  sms {t['template']}: {t['sms']} sent, {t['parts']} parts, cost {t['cost']}")
    for e in figures["top_errors"]:
        click.echo(f"  error {e['channel']} {e['error_code']}: {e['deliveries']}")


@main.command()
@click.option("--user", help="messages of this user")
@click.option("--state", help="accepted, delivered, unconfirmed, failed or expired")
@click.option("--since", help="created at or after this ISO time, e.g. 2026-11-22T03:00:00Z")
@click.option("--until", help="created before this ISO time")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--cursor", help="the next_cursor of the previous page")
@_friendly
def messages(
    user: str | None,
    state: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """Find messages by user, state and time range, newest first, as JSON."""
    from notifier.search import find_messages

    _json(find_messages(user, state, since, until, limit, cursor))


@main.command()
@click.argument("what", type=click.Choice(["api", "apns", "fcm", "carrier"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
def serve(what: str, host: str, port: int) -> None:
    """Serve the HTTP API or one of the mock providers (HTTP/1.1 and h2c on one port)."""
    from notifier.serve import TARGETS, PortTaken
    from notifier.serve import serve as run

    try:
        run(TARGETS[what], host, port)
    except PortTaken as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@click.argument("provider", type=click.Choice(["apns", "fcm", "carrier"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.pass_context
def mock(ctx: click.Context, provider: str, host: str, port: int) -> None:
    """Run a mock provider (same as `serve PROVIDER`); see NOTIFIER_MOCK_* in the README."""
    ctx.invoke(serve, what=provider, host=host, port=port)


class _Rate:
    """Sleep so that calls happen at most `per_second` times a second."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next_at = 0.0

    def __call__(self) -> None:
        import time

        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


@main.command()
@click.option(
    "--state",
    "states_",
    multiple=True,
    default=["failed"],
    show_default=True,
    help="failed, rate_limited, undelivered, unconfirmed, cancelled (more with --force)",
)
@click.option("--channel", type=click.Choice(["push", "sms"]))
@click.option("--since", type=click.DateTime(), help="updated at or after (UTC)")
@click.option("--until", type=click.DateTime(), help="updated at or before (UTC)")
@click.option("--error-code")
@click.option("--user")
@click.option("--message", "message_id")
@click.option("--dry-run", is_flag=True, help="list what would be replayed, change nothing")
@click.option("--rate", type=float, default=50.0, show_default=True, help="replays per second")
@click.option("--force", is_flag=True, help="also resend what already reached the provider")
@click.option("--reason", default="operator replay", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@_friendly
def replay(
    states_: tuple[str, ...],
    channel: str | None,
    since: Any,
    until: Any,
    error_code: str | None,
    user: str | None,
    message_id: str | None,
    dry_run: bool,
    rate: float,
    force: bool,
    reason: str,
    as_json: bool,
) -> None:
    """Re-send deliveries that ended badly. Exit 0 done (or nothing to do), 1 some moved on
    meanwhile and were skipped, 2 bad input."""
    from datetime import UTC

    from notifier import replay as replays
    from notifier.domain.errors import InvalidInput

    try:
        message = uuid.UUID(message_id) if message_id else None
    except ValueError:
        raise InvalidInput("--message", "must be a message id (UUID)") from None
    selection = replays.Selection(
        tuple(states_),
        channel,
        since.replace(tzinfo=UTC) if since else None,
        until.replace(tzinfo=UTC) if until else None,
        error_code,
        user,
        message,
        force,
    )
    chosen = replays.candidates(selection)
    if dry_run:
        if as_json:
            _json({"would_replay": len(chosen), "deliveries": [c.as_dict() for c in chosen]})
        else:
            for c in chosen:
                code = c.error_code or "-"
                click.echo(f"{c.delivery_id} {c.channel:4} {c.state:12} {code:24} {c.user_id}")
            click.echo(f"{len(chosen)} deliveries would be replayed")
        return
    if as_json or not chosen:
        done, skipped = replays.replay(chosen, reason, _Rate(rate))
    else:
        with click.progressbar(length=len(chosen), label="replaying", file=sys.stderr) as bar:
            done, skipped = replays.replay(chosen, reason, _Rate(rate), lambda c, ok: bar.update(1))
    if as_json:
        _json({"selected": len(chosen), "replayed": done, "skipped": skipped})
    else:
        click.echo(f"replayed {done} of {len(chosen)}; {skipped} skipped (moved on meanwhile)")
    if skipped:
        sys.exit(1)


@main.command("fault-proxy")
@click.option("--upstream-port", type=int, required=True, help="the mock to stand in front of")
@click.option("--port", type=int, required=True)
@click.option("--goaway-after", type=int, default=0, help="GOAWAY after N streams (0: never)")
@click.option("--drop-after", type=int, default=0, help="reset after N streams (0: never)")
@click.option("--jitter", type=float, default=0.0, help="vary each threshold by this fraction")
def fault_proxy(
    upstream_port: int, port: int, goaway_after: int, drop_after: int, jitter: float
) -> None:
    """An HTTP/2 proxy that injects GOAWAYs and dropped connections in front of a mock."""
    import asyncio

    from notifier.mock.proxy import H2Proxy, ProxyFaults

    proxy = H2Proxy("127.0.0.1", upstream_port, ProxyFaults(goaway_after, drop_after, jitter))
    click.echo(f"proxying 127.0.0.1:{port} → :{upstream_port}", err=True)
    asyncio.run(proxy.serve("127.0.0.1", port))


@main.command()
@click.option("--users", default=3, show_default=True, help="users of each device kind")
@click.option("--deadline", default=3, show_default=True, help="receipt deadline, seconds")
@click.option("--timeout", default=90.0, show_default=True, help="give up after, seconds")
@click.option("--keep", is_flag=True, help="keep the demo's working folder")
def demo(users: int, deadline: int, timeout: float, keep: bool) -> None:
    """Start mocks, API and workers, send under supplement and concurrent, print the table."""
    from notifier.demo.run import run_demo

    sys.exit(run_demo(users=users, deadline=deadline, timeout=timeout, keep=keep))


if __name__ == "__main__":
    main()
