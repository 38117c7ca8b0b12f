"""SMS templates and signatures: approval, `${var}` placeholders, rendering. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Template:
    code: str
    kind: str
    content: str
    status: str


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
    if kind == "verification" and len(placeholders(content)) != 1:
        raise InvalidInput("content", "a verification template has exactly one variable")


def check_signature_definition(name: str) -> None:
    if not SIGNATURE_MIN <= len(name) <= SIGNATURE_MAX:
        raise InvalidInput("signature", f"{SIGNATURE_MIN}-{SIGNATURE_MAX} characters")


def check_params(template: Template, params: Mapping[str, object], field: str) -> dict[str, str]:
    """Every placeholder gets a value, no unknown names, each value plain and short enough."""
    if template.status != APPROVED:
        raise InvalidInput(f"{field}.template", f"template {template.code} is {template.status}")
    wanted = placeholders(template.content)
    missing = [name for name in wanted if name not in params]
    if missing:
        raise InvalidInput(f"{field}.params", f"missing value for {', '.join(missing)}")
    extra = sorted(set(params) - set(wanted))
    if extra:
        raise InvalidInput(f"{field}.params", f"unknown parameter {', '.join(extra)}")
    clean: dict[str, str] = {}
    for name in wanted:
        value = params[name]
        if not isinstance(value, str | int):
            raise InvalidInput(f"{field}.params.{name}", "must be a string or an integer")
        text = str(value)
        if len(text) > MAX_PARAM_LENGTH:
            raise InvalidInput(
                f"{field}.params.{name}", f"at most {MAX_PARAM_LENGTH} characters, got {len(text)}"
            )
        clean[name] = text
    return clean


def check_signature(signature: Signature, field: str) -> None:
    if signature.status != APPROVED:
        raise InvalidInput(field, f"signature {signature.name} is {signature.status}")


def render(template: Template, signature: Signature, params: Mapping[str, str]) -> str:
    """The text the phone shows: signature in brackets, then the template with values filled in."""
    body = PLACEHOLDER.sub(lambda m: params[m.group(1)], template.content)
    mark = f"【{signature.name}】" if CJK.search(template.content) else f"[{signature.name}]"
    return f"{mark}{body}"
