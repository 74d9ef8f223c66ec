"""Policy values typed in the CLI or the console form: anything but plain digits is a clear refusal."""

from __future__ import annotations

import pytest

from alpaca_vault.guard.errors import PolicyInputError
from alpaca_vault.guard.policy_input import parse_changes

# Superscript two passes str.isdigit() and int() refuses it (a traceback, not an answer); Arabic-Indic and
# mathematical digits int() reads, but a policy is typed in ASCII; and a number past int()'s digit limit.
NOT_PLAIN_DIGITS = ["\u00b2", "\u0661\u0662", "\U0001d7d9\U0001d7da", "0" * 5000, "1e3", " ", "-1"]


@pytest.mark.parametrize("text", NOT_PLAIN_DIGITS)
@pytest.mark.parametrize("field", ["max_orders_per_day", "max_orders_per_minute", "duplicate_window_seconds"])
def test_a_count_that_is_not_plain_digits_is_refused_with_the_allowed_range(field: str, text: str) -> None:
    with pytest.raises(PolicyInputError) as refused:
        parse_changes({field: text}, {})
    assert "Nothing was changed" in str(refused.value)


def test_plain_counts_still_parse() -> None:
    assert parse_changes({"max_orders_per_day": "25", "duplicate_window_seconds": "0"}, {}) == {
        "max_orders_per_day": 25,
        "duplicate_window_seconds": 0,
    }
