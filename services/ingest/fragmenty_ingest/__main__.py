"""``python -m fragmenty_ingest`` and the ``fragmenty-ingest`` console script."""

from __future__ import annotations

from fragmenty_ingest.main import main as run_service
from fragmenty_shared.cli import parse_service_arguments


def main() -> None:
    parse_service_arguments(
        "fragmenty-ingest",
        "Consume observed listings, store state and history, publish price events "
        "(health and metrics on FRAGMENTY_INGEST_PORT).",
    )
    run_service()


if __name__ == "__main__":
    main()
