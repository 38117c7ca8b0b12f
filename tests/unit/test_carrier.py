import pytest

from notifier.domain.outcomes import Kind
from notifier.providers.carrier import classify


@pytest.mark.parametrize(
    ("status", "doc", "kind"),
    [
        (200, {"Code": "OK", "BizId": "b-1"}, Kind.SENT),
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL"}, Kind.INVALID_TARGET),
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL"}, Kind.REJECTED),
        (200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL"}, Kind.REJECTED),
        (200, {"Code": "isp.SYSTEM_ERROR"}, Kind.RETRY),
        (503, {}, Kind.RETRY),
    ],
)
def test_classify(status, doc, kind):
    outcome = classify(status, doc, {})
    assert outcome.kind is kind
    if kind is Kind.SENT:
        assert outcome.provider_ref == "b-1"
