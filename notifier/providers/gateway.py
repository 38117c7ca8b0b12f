"""The push gateway: APNs and FCM requests of one batch sent together on the shared transport."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from config.settings import Settings, get_settings
from notifier.domain.outcomes import Kind, Outcome
from notifier.providers import apns, fcm
from notifier.providers.push_job import PushJob
from notifier.providers.transport import Http2Transport, HttpRequest

log = logging.getLogger(__name__)


class PushGateway:
    def __init__(
        self,
        transport: Http2Transport,
        apns_url: str,
        apns_creds: apns.ApnsCredentials | None,
        fcm_url: str,
        fcm_account: fcm.ServiceAccount | None,
    ) -> None:
        self.transport = transport
        self.apns_url = apns_url
        self.apns_creds = apns_creds
        self.apns_token = apns.ProviderToken(apns_creds) if apns_creds else None
        self.fcm_url = fcm_url
        self.fcm_account = fcm_account
        self.fcm_token = fcm.AccessToken(fcm_account) if fcm_account else None

    def warm(self) -> None:
        """Sign the provider tokens now: loading a key costs ~30-60 ms of CPU, which the first
        push after a worker starts (a one-time code, say) should not wait for. A token
        endpoint that is away is tried again by the first push, as always."""
        if self.apns_token:
            self.apns_token.current()
        if self.fcm_token:
            try:
                self.fcm_token.current()
            except Exception as exc:
                log.warning("FCM access token not fetched at start (%s); the first push will", exc)

    def send(self, jobs: Sequence[PushJob]) -> list[Outcome]:
        """One outcome per job, same order.

        Requests that got no response at all (connection dropped, GOAWAY beyond the last
        processed stream) are sent once more at once, on a fresh connection; auth refusals
        get one token refresh and one more try. Whatever still fails is the caller's retry.
        """
        outcomes = self._send_once(jobs)
        lost = [i for i, o in enumerate(outcomes) if o.status_code is None and o.kind is Kind.RETRY]
        self._resend(jobs, outcomes, lost)
        refused = [i for i, o in enumerate(outcomes) if self._auth_refused(jobs[i], o)]
        if refused and self._refresh_auth({jobs[i].platform for i in refused}):
            self._resend(jobs, outcomes, refused)
        return outcomes

    def _resend(self, jobs: Sequence[PushJob], outcomes: list[Outcome], which: list[int]) -> None:
        if which:
            for i, outcome in zip(which, self._send_once([jobs[i] for i in which]), strict=True):
                outcomes[i] = outcome

    def _send_once(self, jobs: Sequence[PushJob]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(jobs)
        requests: list[HttpRequest] = []
        slots: list[int] = []
        for i, job in enumerate(jobs):
            built = self._build(job)
            if isinstance(built, Outcome):
                outcomes[i] = built
            else:
                requests.append(built)
                slots.append(i)
        for i, response in zip(slots, self.transport.perform(requests), strict=True):
            classify = apns.classify if jobs[i].platform == "apns" else fcm.classify
            outcomes[i] = classify(response)
        return [o for o in outcomes if o is not None]

    def _build(self, job: PushJob) -> HttpRequest | Outcome:
        if job.platform == "apns":
            if not (self.apns_creds and self.apns_token):
                return Outcome.rejected(None, "apns_not_configured", "NOTIFIER_APNS_* unset")
            token = self.apns_token.current()
            return apns.build_request(self.apns_url, job, token, self.apns_creds.topic)
        if not (self.fcm_account and self.fcm_token):
            return Outcome.rejected(None, "fcm_not_configured", "NOTIFIER_FCM_* unset")
        try:
            token = self.fcm_token.current()
        except Exception as exc:  # token endpoint down or refusing: retry the delivery later
            return Outcome.retry(None, "fcm_auth", f"access token: {exc}")
        return fcm.build_request(self.fcm_url, self.fcm_account.project_id, job, token)

    @staticmethod
    def _auth_refused(job: PushJob, outcome: Outcome) -> bool:
        if outcome.kind is not Kind.RETRY:
            return False
        if job.platform == "apns":
            return outcome.error_code in apns.TOKEN_REASONS
        return outcome.status_code == 401

    def _refresh_auth(self, platforms: set[str]) -> bool:
        refreshed = False
        if "apns" in platforms and self.apns_token:
            refreshed |= self.apns_token.refresh_after_rejection()
        if "fcm" in platforms and self.fcm_token:
            self.fcm_token.invalidate()
            refreshed = True
        return refreshed


def gateway_from_settings(settings: Settings) -> PushGateway:
    creds = None
    if settings.apns_key_file:
        creds = apns.ApnsCredentials(
            Path(settings.apns_key_file).read_text(),
            settings.apns_key_id,
            settings.apns_team_id,
            settings.apns_topic,
        )
    account = None
    if settings.fcm_service_account_file:
        account = fcm.ServiceAccount.from_json(Path(settings.fcm_service_account_file).read_text())
    transport = Http2Transport(settings.push_concurrency, settings.push_timeout_seconds)
    return PushGateway(transport, settings.apns_url, creds, settings.fcm_url, account)


@lru_cache(maxsize=1)
def process_gateway() -> PushGateway:
    """One gateway per worker process, so its HTTP/2 connections outlive single tasks."""
    return gateway_from_settings(get_settings())
