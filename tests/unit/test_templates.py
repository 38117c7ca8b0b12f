import pytest

from notifier.domain import templates
from notifier.domain.errors import InvalidInput
from notifier.domain.templates import Signature, Template

APPROVED = Template("T1", "notification", "Hi ${name}, code ${code}. ${name}!", "approved")
SIGN = Signature("Bank", "approved")


def test_placeholders_in_order_without_repeats():
    assert templates.placeholders(APPROVED.content) == ["name", "code"]


def test_render_fills_values_and_prefixes_latin_signature():
    text = templates.render(APPROVED, SIGN, {"name": "Ann", "code": "42"})
    assert text == "[Bank]Hi Ann, code 42. Ann!"


def test_chinese_template_gets_full_width_brackets():
    tpl = Template("T2", "notification", "您的验证码是${code}", "approved")
    assert templates.render(tpl, Signature("银行", "approved"), {"code": "1234"}).startswith(
        "【银行】"
    )


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"name": "Ann"}, "sms.params", "missing value for code"),
        ({"name": "Ann", "code": "1", "x": "y"}, "sms.params", "unknown parameter x"),
        ({"name": "A" * 36, "code": "1"}, "sms.params.name", "at most 35 characters, got 36"),
        ({"name": ["A"], "code": "1"}, "sms.params.name", "must be a string or an integer"),
    ],
)
def test_params_refused_with_field_and_rule(params, field, rule):
    with pytest.raises(InvalidInput) as err:
        templates.check_params(APPROVED, params, "sms")
    assert (err.value.field, err.value.rule) == (field, rule)


def test_unapproved_template_refused():
    pending = Template("T3", "notification", "x", "pending")
    with pytest.raises(InvalidInput, match="template T3 is pending"):
        templates.check_params(pending, {}, "sms")


def test_unapproved_signature_refused():
    with pytest.raises(InvalidInput, match="signature Bank is rejected"):
        templates.check_signature(Signature("Bank", "rejected"), "sms.signature")


def test_integer_params_become_text():
    assert templates.check_params(APPROVED, {"name": "A", "code": 1234}, "sms")["code"] == "1234"


def test_verification_template_needs_exactly_one_variable():
    with pytest.raises(InvalidInput, match="exactly one variable"):
        templates.check_template_definition("V1", "verification", "${a} ${b}")


def test_signature_length_rule():
    with pytest.raises(InvalidInput, match="2-12 characters"):
        templates.check_signature_definition("X")
