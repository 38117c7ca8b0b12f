"""Bulk lanes give way to transactional ones.

Separate queues keep a campaign's batches from standing in line before a one-time code, and
nice keeps the bulk workers off a contested CPU; but a campaign's load also lands where no
nice reaches: the database, the API taking its acks, the providers. So before each batch a
bulk lane looks at the transactional queues and, while tasks wait there, holds its batch
back: in short steps, and never longer than NOTIFIER_BULK_GIVE_WAY_MAX_SECONDS, so a campaign
always moves. One Redis round trip per batch of hundreds when nothing waits.

And a niced bulk worker yields the CPU to other sessions while transactional work is about
(notifier.autogroup, notifier.transactional_seen): one more Redis round trip per batch, for
niced workers only.
"""

from __future__ import annotations

from config.settings import get_settings
from notifier import autogroup, transactional_seen
from notifier.metrics import GAVE_WAY
from notifier.queue_depth import depths_if_known
from notifier.waiting import wait_while

TRANSACTIONAL = ("push", "sms")
STEP_SECONDS = 0.02


def give_way(lane: str) -> float:
    """Before a bulk batch on `lane`: wait while transactional tasks wait, at most the
    configured cap (0: not at all), and yield the CPU while transactional work is about;
    returns the seconds waited."""
    cap = get_settings().bulk_give_way_max_seconds
    waited = 0.0
    if cap > 0:
        waited, _ = wait_while(_transactional_waiting, cap, STEP_SECONDS)
    if waited:
        GAVE_WAY.labels(lane).inc(waited)
    if autogroup.can_yield():
        # A broker that cannot tell (AMQP, or Redis away): yield, as the worker's nice asks.
        autogroup.yield_share(transactional_seen.recent() is not False)
    return waited


def _transactional_waiting() -> bool:
    # The broker away: nothing to give way to that could be served now; the batch goes
    # ahead and meets the outage (and its retries) on its own.
    return any((depths_if_known(TRANSACTIONAL) or {}).values())
