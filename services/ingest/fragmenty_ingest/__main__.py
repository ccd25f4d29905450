"""``python -m fragmenty_ingest`` and the ``fragmenty-ingest`` console script."""

from __future__ import annotations

from fragmenty_ingest.main import main

if __name__ == "__main__":
    main()
