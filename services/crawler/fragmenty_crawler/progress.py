"""Progress of an interactive run on stderr: views, pages and rows, one line kept up to date."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from fragmenty_crawler.census import ViewProgress
from fragmenty_crawler.views import View
from fragmenty_shared.contracts import CensusView


class ProgressLine:
    """Rewrites one status line on a terminal; prints nothing when stderr is not a terminal."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._views: dict[str, str] = {}
        self._shown = False
        if self._enabled:
            # Log lines go to the same terminal: wipe the progress line before each one, so a
            # record never lands after it; the next update redraws it below the record.
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._clear_before_log)

    def on_progress(self, view: View, progress: ViewProgress) -> None:
        self._views[view.key] = f"{progress.pages}p/{progress.rows_parsed}r"
        self._draw()

    def on_view_done(self, summary: CensusView) -> None:
        key = f"{summary.asset.value}:{summary.status.value}"
        self._views[key] = f"{summary.rows}r {'done' if summary.complete else 'INCOMPLETE'}"
        self._draw()

    def finish(self) -> None:
        if self._enabled and self._views:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False
            self._views.clear()

    def _clear_before_log(self, record: logging.LogRecord) -> bool:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
        return True

    def _draw(self) -> None:
        if not self._enabled:
            return
        line = "  ".join(f"{key} {state}" for key, state in sorted(self._views.items()))
        self._stream.write(f"\r\x1b[K{line}")
        self._stream.flush()
        self._shown = True
