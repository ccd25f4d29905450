"""What a parser could not read, with a short machine-readable reason and a human detail."""

from __future__ import annotations


class ParseFailure(Exception):
    """A page, answer or row that cannot be read as Fragment's markup describes it.

    ``reason`` is a short code used as a metric label (``no_results_table``, ``truncated``,
    ``missing_price``...); ``detail`` says where and what, for the log line and the user.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
