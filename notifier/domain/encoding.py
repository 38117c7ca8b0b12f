"""SMS encoding and segmentation (3GPP TS 23.038 alphabet; concatenated SMS with a 6-byte UDH).

GSM-7: 160 septets in a single message, 153 per part once concatenated; characters of the
extension table take two septets (ESC + code) and never straddle a part boundary. Any
character outside the GSM alphabet makes the whole message UCS-2: 70 UTF-16 units single,
67 per part, and a surrogate pair is never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# GSM 03.38 default alphabet, code points 0x00-0x7F in order (0x1B, the escape, left out).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
# The extension table: each costs two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7 = "GSM-7"
UCS2 = "UCS-2"
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Segments:
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: list[str]

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def unit_cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def segment(text: str) -> Segments:
    """Split `text` the way a handset-bound SMS is split, counting units per part."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    single, per_part = LIMITS[encoding]
    costs = [unit_cost(ch, encoding) for ch in text]
    total = sum(costs)
    if total <= single:
        return Segments(encoding, total, [text] if text else [])
    parts: list[str] = []
    start = used = 0
    for i, cost in enumerate(costs):
        if used + cost > per_part:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return Segments(encoding, total, parts)


@dataclass(frozen=True)
class PriceTable:
    """Price per SMS part by country prefix; the longest matching prefix wins."""

    prices: dict[str, Decimal]
    default: Decimal

    @classmethod
    def parse(cls, raw: str) -> PriceTable:
        """From `+86=0.045,+1=0.0079,*=0.05` (`*` is every other destination)."""
        prices: dict[str, Decimal] = {}
        default = Decimal("0")
        for item in filter(None, (p.strip() for p in raw.split(","))):
            prefix, _, price = item.partition("=")
            if prefix.strip() == "*":
                default = Decimal(price.strip())
            else:
                prices[prefix.strip()] = Decimal(price.strip())
        return cls(prices, default)

    def per_part(self, phone: str) -> Decimal:
        matches = [p for p in self.prices if phone.startswith(p)]
        return self.prices[max(matches, key=len)] if matches else self.default

    def cost(self, phone: str, parts: int) -> Decimal:
        return self.per_part(phone) * parts
