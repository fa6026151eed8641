"""Exact money columns: cents become DECIMAL(18,2) without passing through float."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from demo.parts import money_from_cents


def test_cents_become_exact_decimals_with_sign_and_nulls() -> None:
    cents = np.array([0, 1, -1, 123456789012, -250, 10**15], dtype=np.int64)
    null = np.array([False, False, False, False, True, False])
    values = money_from_cents(cents, null).to_pylist()
    assert values == [Decimal("0.00"), Decimal("0.01"), Decimal("-0.01"), Decimal("1234567890.12"),
                      None, Decimal("10000000000000.00")]  # fmt: skip
