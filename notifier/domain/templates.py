"""SMS templates and signatures: approval, `${var}` placeholders, rendering. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from notifier.domain.encoding import Segments, segment
from notifier.domain.errors import InvalidInput

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"

TEMPLATE_KINDS = ("verification", "notification", "promotional")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Carriers' default limit on one variable's value (Alibaba Cloud SMS message rules).
MAX_PARAM_LENGTH = 35
CODE_RULE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SIGNATURE_MIN, SIGNATURE_MAX = 2, 12
CJK = re.compile(r"[\u3400-\u9fff]")
# A verification code: 4-8 letters or digits (Alibaba allows 4-6; we take banks' 8 too).
CODE_VALUE = re.compile(r"^[A-Za-z0-9]{4,8}$")
# Promotional content must tell the reader how to stop it (carrier marketing rules).
OPT_OUT_TEXT = re.compile(r"reply\s+stop|unsubscribe|opt[\s-]?out|退订|回复\s*TD", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Signature + content, as carriers count it.
MAX_RENDERED = 500


@dataclass(frozen=True)
class Template:
    code: str
    kind: str
    content: str
    status: str
    max_param_length: int = MAX_PARAM_LENGTH


@dataclass(frozen=True)
class Signature:
    name: str
    status: str


def placeholders(content: str) -> list[str]:
    """The distinct variable names of a template, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(content)))


def check_template_definition(code: str, kind: str, content: str) -> None:
    if not CODE_RULE.match(code):
        raise InvalidInput("code", "1-64 characters of letters, digits, '_', '.', '-'")
    if kind not in TEMPLATE_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(TEMPLATE_KINDS)}")
    if not content.strip():
        raise InvalidInput("content", "must not be empty")
    if CONTROL.search(content.replace("\n", "")):
        raise InvalidInput("content", "plain text only: no control characters but line breaks")
    if kind == "verification" and len(placeholders(content)) != 1:
        raise InvalidInput("content", "a verification template has exactly one variable")
    if kind == "promotional" and not OPT_OUT_TEXT.search(content):
        raise InvalidInput(
            "content",
            "a promotional template must carry opt-out text, e.g. 'Reply STOP to unsubscribe'",
        )


def check_signature_definition(name: str) -> None:
    if not SIGNATURE_MIN <= len(name) <= SIGNATURE_MAX:
        raise InvalidInput("signature", f"{SIGNATURE_MIN}-{SIGNATURE_MAX} characters")


def check_params(
    template: Template, params: Mapping[str, object], field: str, require_approved: bool = True
) -> dict[str, str]:
    """Every placeholder gets a value, no unknown names, each value plain and short enough."""
    if require_approved and template.status != APPROVED:
        raise InvalidInput(f"{field}.template", f"template {template.code} is {template.status}")
    wanted = placeholders(template.content)
    missing = [name for name in wanted if name not in params]
    if missing:
        raise InvalidInput(f"{field}.params", f"missing value for {', '.join(missing)}")
    extra = sorted(set(params) - set(wanted))
    if extra:
        raise InvalidInput(f"{field}.params", f"unknown parameter {', '.join(extra)}")
    return {name: _check_value(template, name, params[name], field) for name in wanted}


def _check_value(template: Template, name: str, value: object, field: str) -> str:
    where = f"{field}.params.{name}"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(where, "must be a string or an integer")
    text = str(value)
    if template.kind == "verification" and not CODE_VALUE.match(text):
        raise InvalidInput(where, "a verification code is 4-8 letters or digits")
    if len(text) > template.max_param_length:
        raise InvalidInput(
            where, f"at most {template.max_param_length} characters, got {len(text)}"
        )
    if CONTROL.search(text):
        raise InvalidInput(where, "plain text only: no line breaks or control characters")
    return text


def check_signature(signature: Signature, field: str) -> None:
    if signature.status != APPROVED:
        raise InvalidInput(field, f"signature {signature.name} is {signature.status}")


def render(template: Template, signature: Signature, params: Mapping[str, str]) -> str:
    """The text the phone shows: signature in brackets, then the template with values filled in."""
    body = PLACEHOLDER.sub(lambda m: params[m.group(1)], template.content)
    mark = f"【{signature.name}】" if CJK.search(template.content) else f"[{signature.name}]"
    return f"{mark}{body}"


def check_length(text: str, max_parts: int, field: str = "sms") -> Segments:
    """The rendered text's segments, or a refusal when it is longer than we let one SMS be."""
    if len(text) > MAX_RENDERED:
        raise InvalidInput(
            field, f"signature + content at most {MAX_RENDERED} characters, got {len(text)}"
        )
    segments = segment(text)
    if segments.count > max_parts:
        raise InvalidInput(
            field,
            f"at most {max_parts} parts, this text needs {segments.count} "
            f"({segments.units} {segments.encoding} units)",
        )
    return segments
