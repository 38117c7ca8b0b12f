"""Small helpers shared by the test tiers."""

from __future__ import annotations

from notifier import catalog


def approved_catalogue(signature: str, templates: dict[str, tuple[str, str]]) -> None:
    """Add and approve a signature and templates ({code: (kind, content)})."""
    catalog.add_signature(signature)
    catalog.review("signature", signature, approve=True)
    for code, (kind, content) in templates.items():
        catalog.add_template(code, kind, content)
        catalog.review("template", code, approve=True)
