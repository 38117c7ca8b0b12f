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


VERIFY = Template("OTP", "verification", "Your code is ${code}", "approved")


@pytest.mark.parametrize("value", ["123", "123456789", "12 34", "ab-cd", "http://x"])
def test_verification_code_is_4_to_8_letters_or_digits(value):
    with pytest.raises(InvalidInput, match="4-8 letters or digits"):
        templates.check_params(VERIFY, {"code": value}, "sms")


def test_verification_code_accepted():
    assert templates.check_params(VERIFY, {"code": "A1b2C3"}, "sms") == {"code": "A1b2C3"}


def test_promotional_needs_opt_out_text():
    with pytest.raises(InvalidInput, match="opt-out text"):
        templates.check_template_definition("P1", "promotional", "Sale! ${pct} off")
    templates.check_template_definition("P1", "promotional", "Sale! Reply STOP to unsubscribe")
    templates.check_template_definition("P2", "promotional", "大促销 回复TD退订")


def test_per_template_parameter_length():
    roomy = Template("T9", "notification", "${name}", "approved", max_param_length=50)
    assert templates.check_params(roomy, {"name": "x" * 50}, "sms")
    with pytest.raises(InvalidInput, match="at most 50 characters"):
        templates.check_params(roomy, {"name": "x" * 51}, "sms")


def test_values_are_plain_text():
    with pytest.raises(InvalidInput, match="plain text only"):
        templates.check_params(APPROVED, {"name": "Ann\nCall me", "code": "1"}, "sms")


def test_signature_counts_in_length_and_part_limit_refuses():
    text = templates.render(Template("L", "notification", "x" * 150, "approved"), SIGN, {})
    assert templates.check_length(text, 5).count == 1  # [Bank] + 150 = 156 septets
    long_text = templates.render(Template("L", "notification", "x" * 158, "approved"), SIGN, {})
    assert templates.check_length(long_text, 5).count == 2  # 164 septets
    with pytest.raises(InvalidInput, match="at most 1 parts, this text needs 2"):
        templates.check_length(long_text, 1)
    with pytest.raises(InvalidInput, match="at most 500 characters"):
        templates.check_length("x" * 501, 10)


def test_template_content_is_plain_text():
    with pytest.raises(InvalidInput, match="no control characters"):
        templates.check_template_definition("T", "notification", "Hello\x00 ${x}")
    templates.check_template_definition("T", "notification", "Hello\n${x}")
