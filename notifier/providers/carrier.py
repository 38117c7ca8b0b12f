"""SMS carrier HTTP API client, shaped like SendSms / QuerySendDetails of the big SMS clouds."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter

from config.settings import get_settings
from notifier.domain.outcomes import Outcome
from notifier.providers.transport import Http1Transport, HttpRequest, HttpResponse

T = TypeVar("T")
R = TypeVar("R")

INVALID_TARGET_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})
# Worth another try later: the carrier's own faults, API throttling, an empty prepaid balance.
RETRY_CODES = frozenset(
    {"isp.SYSTEM_ERROR", "Throttling.User", "isv.THROTTLING", "isv.AMOUNT_NOT_ENOUGH"}
)
# QuerySendDetails SendStatus: 1 waiting for the handset's receipt, 2 failed, 3 delivered.
WAITING, FAILED, DELIVERED = 1, 2, 3


@dataclass(frozen=True)
class SmsSubmit:
    phone: str
    sign_name: str
    template_code: str
    params: Mapping[str, str]
    out_id: str


class CarrierClient:
    def __init__(
        self, base_url: str, access_key: str, timeout: float = 10.0, concurrency: int = 8
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_key = access_key
        self.timeout = timeout
        self.concurrency = concurrency
        self.http = requests.Session()
        # Submissions run on `concurrency` threads sharing this session: keep that many sockets.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self._threads: ThreadPoolExecutor | None = None
        self._batch: Http1Transport | None = None

    def map(self, call: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`call` over `items`, up to `concurrency` at once, on threads kept for the life of the
        client: a batch of submissions does not start threads of its own."""
        if len(items) <= 1:
            return [call(item) for item in items]
        if self._threads is None:  # first used in the worker process, after any fork
            self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="carrier")
        return list(self._threads.map(call, items))

    def _call(self, path: str, params: dict[str, str]) -> requests.Response:
        return self.http.post(
            f"{self.base_url}{path}",
            data={**params, "AccessKeyId": self.access_key},
            timeout=self.timeout,
        )

    def submit_all(self, batch: Sequence[SmsSubmit]) -> list[Outcome]:
        """SendSms for each, `concurrency` requests in flight at once on kept-alive
        connections (libcurl: a submit costs a fraction of a Python HTTP client's call).
        One batch at a time: the libcurl handle is not shared between threads."""
        if not batch:
            return []
        if self._batch is None:  # first used in the worker process, after any fork
            self._batch = Http1Transport(self.concurrency, self.timeout)
        headers = {"content-type": "application/x-www-form-urlencoded"}
        url = f"{self.base_url}/sms/send"
        answers = self._batch.perform(
            [HttpRequest("POST", url, headers, self._form(sms)) for sms in batch]
        )
        return [_outcome(answer) for answer in answers]

    def _form(self, sms: SmsSubmit) -> bytes:
        fields = {
            "PhoneNumbers": sms.phone,
            "SignName": sms.sign_name,
            "TemplateCode": sms.template_code,
            "TemplateParam": json.dumps(dict(sms.params), ensure_ascii=False),
            "OutId": sms.out_id,
            "AccessKeyId": self.access_key,
        }
        return urlencode(fields).encode()

    def _details(self, params: dict[str, str]) -> list[dict[str, Any]]:
        response = self._call("/sms/query", params)
        response.raise_for_status()
        return [d for d in _json(response).get("SmsSendDetailDTOs", []) if isinstance(d, dict)]

    def find_by_out_id(self, out_id: str) -> str | None:
        """The carrier's biz id for a submission we made under `out_id`, if it has one."""
        for detail in self._details({"OutId": out_id}):
            if detail.get("OutId") == out_id and detail.get("BizId"):
                return str(detail["BizId"])
        return None

    def report(self, biz_id: str, out_id: str) -> dict[str, Any] | None:
        """The delivery report for one submission, shaped like a webhook DLR; None while the
        carrier still waits for the handset."""
        for detail in self._details({"BizId": biz_id}):
            status = int(detail.get("SendStatus", WAITING))
            if status == WAITING:
                return None
            return {
                "biz_id": biz_id,
                "out_id": out_id,
                "success": status == DELIVERED,
                "err_code": detail.get("ErrCode")
                or ("DELIVERED" if status == DELIVERED else "UNDELIVERED"),
                "source": "poll",
            }
        return None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _outcome(answer: HttpResponse) -> Outcome:
    if answer.status is None:
        # The carrier may have taken it anyway: the next attempt queries before resending.
        return Outcome.retry(None, "connection", answer.error)
    try:
        doc = json.loads(answer.body)
    except ValueError:
        doc = {}
    return classify(answer.status, doc if isinstance(doc, dict) else {}, answer.headers)


def classify(status: int, doc: Mapping[str, Any], headers: Mapping[str, str]) -> Outcome:
    """`headers` with lower-case names (libcurl's transport keeps them so)."""
    code = str(doc.get("Code", f"http_{status}"))
    if status == 200 and code == "OK":
        return Outcome.sent(status, str(doc.get("BizId")))
    message = str(doc.get("Message", "")) or None
    if code in INVALID_TARGET_CODES:
        return Outcome.invalid_target(status, code, message)
    if code in RETRY_CODES or status >= 500 or status == 429:
        raw = headers.get("retry-after")
        return Outcome.retry(status, code, message, float(raw) if raw else None)
    return Outcome.rejected(status, code, message)


@lru_cache(maxsize=1)
def process_carrier() -> CarrierClient:
    settings = get_settings()
    return CarrierClient(
        settings.carrier_url, settings.carrier_access_key, concurrency=settings.sms_concurrency
    )
