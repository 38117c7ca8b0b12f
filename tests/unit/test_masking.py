import logging

from notifier.domain.masking import mask_phone, mask_phones
from notifier.logs import MaskPhones


def test_phone_keeps_country_and_last_two_digits():
    assert mask_phone("+8613800138078") == "+8613******78"
    assert mask_phone("+14155550123") == "+1415******23"


def test_every_number_in_a_text_is_masked():
    assert mask_phones("from +8613800138078 to +14155550123.") == (
        "from +8613******78 to +1415******23."
    )


def test_log_records_are_masked_with_their_arguments_and_traceback():
    try:
        raise ValueError("bad number +8613800138078")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "sms to %s", ("+8613800138078",), sys.exc_info()
        )
    assert MaskPhones().filter(record)
    assert record.getMessage() == "sms to +8613******78"
    assert record.exc_text is not None and "+8613800138078" not in record.exc_text
