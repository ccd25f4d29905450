"""Opaque keyset cursors: the sort order and the sort key of the last row a page returned.

A cursor names a position in the total order ``(sort value, _id)``, not an offset, so paging
stays free of duplicates and gaps even when listings are added or removed between two pages.
"""

from __future__ import annotations

import base64
import binascii
import json

from fragmenty_api.snapshot import SORT_KEY_SHAPES, SortKey, SortOrder

MAX_CURSOR_LENGTH = 512
# What encode_cursor produces (unpadded URL-safe base64), for the OpenAPI document and the 422.
CURSOR_PATTERN = rf"^[A-Za-z0-9_-]{{1,{MAX_CURSOR_LENGTH}}}$"


class CursorError(ValueError):
    """The cursor is malformed or belongs to another sort order."""


def encode_cursor(order: SortOrder, key: SortKey) -> str:
    payload = json.dumps([order.value, list(key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: SortOrder) -> SortKey:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("cursor is too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise CursorError("cursor is not one this API issued") from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], list)):
        raise CursorError("cursor is not one this API issued")
    cursor_order, values = payload
    if cursor_order != order.value:
        # Name only the order asked for: nothing of the cursor is echoed (it may be tampered).
        raise CursorError(f"cursor was issued for another sort, not sort={order.value}")
    shape = SORT_KEY_SHAPES[order]
    if len(values) != len(shape):
        raise CursorError("cursor is not one this API issued")
    key: list[object] = []
    for value, expected in zip(values, shape, strict=True):
        if (expected is bool and isinstance(value, bool)) or (
            expected is int and isinstance(value, int) and not isinstance(value, bool)
        ):
            key.append(value)
        elif expected is float and isinstance(value, int | float) and not isinstance(value, bool):
            key.append(float(value))
        elif expected is str and isinstance(value, str) and len(value) <= 200:
            key.append(value)
        else:
            raise CursorError("cursor is not one this API issued")
    return tuple(key)
