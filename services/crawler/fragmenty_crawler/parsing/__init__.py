"""Parsers for Fragment's pages and API answers: pure functions from text to typed records.

Nothing here fetches or publishes; the spider and the ``parse`` command both use these, and the
unit tests run them on saved pages. Every parser fails loudly (:class:`ParseFailure` with a short
reason code) rather than return a half-filled record.
"""
