"""Exact TON amounts.

Messages carry TON as :class:`~decimal.Decimal` (a decimal string in JSON); the database stores
integer nanoTON so that MongoDB can sort and range-filter prices exactly. These two functions are
the only place the two meet.
"""

from __future__ import annotations

from decimal import Decimal

NANOTON_PER_TON = 10**9
_ONE_NANOTON = Decimal(1).scaleb(-9)


def to_nanoton(amount_ton: Decimal) -> int:
    """Integer nanoTON for an exact TON amount; refuses amounts finer than one nanoTON."""
    nanoton = amount_ton * NANOTON_PER_TON
    if nanoton != nanoton.to_integral_value():
        raise ValueError(f"{amount_ton} TON is finer than one nanoTON")
    return int(nanoton)


def from_nanoton(nanoton: int) -> Decimal:
    """The exact TON amount of an integer nanoTON value, without trailing zeros."""
    amount = (Decimal(nanoton) * _ONE_NANOTON).normalize()
    # normalize() writes 100 as 1E+2; quantize back to a plain integer exponent for readability.
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


def usd_cents(amount_ton: Decimal, ton_usd_rate: Decimal) -> int:
    """USD value in cents, rounded half-up as Fragment rounds its own USD figures."""
    return int((amount_ton * ton_usd_rate * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
