"""Logging set-up shared by every notifier process: phone numbers never reach a log in full."""

from __future__ import annotations

import logging

from notifier.domain.masking import mask_phones

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class MaskPhones(logging.Filter):
    """Rewrites each record's message (and traceback) with every E.164 number masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        return True


def mask_handlers(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        if not any(isinstance(f, MaskPhones) for f in handler.filters):
            handler.addFilter(MaskPhones())


def install(level: int = logging.INFO) -> None:
    """Configure the root logger once (if nobody did) and mask phones on all its handlers."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=FORMAT)
    if root.level > level:
        root.setLevel(level)
    mask_handlers(root)
