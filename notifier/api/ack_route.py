"""POST /v1/acks served as plain ASGI in front of the FastAPI app (the API's busiest route).

Every device posts its own receipts, often one at a time. FastAPI's routing, dependency
injection, request and response objects cost such a request ~1.3 ms of CPU here, on top of
the ~0.5 ms of recording the receipt; served by this route it costs the API ~0.6 ms in all
beyond the recording. The route serves the common case itself: a key this process saw live a
moment ago (apikeys.seen_caller) with the device or admin scope, a JSON body of `acks`, the
receipts recorded. Anything else (no or unseen key, a bad body, an error while recording) is
handed to the FastAPI app with the body replayed, so lookups, refusals and errors read
exactly as on every other route; recording is one transaction, so a failed try left nothing.
Concurrent requests are recorded together (ack_commit: group commit), each answered with its
own counts once the transaction holding its receipts commits.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notifier.api.ack_commit import AckCommits
from notifier.api.auth import bearer_key, permits
from notifier.api.device_routes import ack_items
from notifier.asgi_body import read_body
from notifier.domain.errors import InvalidInput
from notifier.pipeline import ingest
from notifier.store import apikeys

PATH = "/v1/acks"
SCOPES = ("device",)  # what the FastAPI route requires (auth.permits: admin holds all)


class AckRoute:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.commits = AckCommits(ingest.record_ack_groups)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        answer = await _answer(self.commits, Headers(scope=scope), body)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _answer(commits: AckCommits, headers: Headers, body: bytes) -> bytes | None:
    """The response body of a request this route serves itself, or None to hand it on."""
    key = bearer_key(headers.get("authorization"))
    caller = apikeys.seen_caller(key) if key is not None else None
    if caller is None or not permits(caller, SCOPES):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    items = ack_items(doc) if isinstance(doc, dict) else None
    if items is None:
        return None
    try:
        acks = ingest.receipts(items)
    except InvalidInput:  # the full app answers with the field and the rule
        return None
    try:
        result = await commits.submit((acks, caller.user_id))
    except Exception:  # refusal or outage: the full app runs it again and answers as usual
        return None
    answer = {"accepted": result.accepted, "ignored": result.duplicate_or_unknown}
    return json.dumps(answer, separators=(",", ":")).encode()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
