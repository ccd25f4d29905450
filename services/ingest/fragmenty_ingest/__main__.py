"""``python -m fragmenty_ingest`` and the ``fragmenty-ingest`` console script.

``fragmenty-ingest`` runs the service; ``fragmenty-ingest migrate`` upgrades the database's
schema in place (see :mod:`fragmenty_ingest.migrate`); ``fragmenty-ingest dead-letters`` lists,
replays or drops what waits in the dead-letter queue (see :mod:`fragmenty_ingest.dead_letters_cli`).
"""

from __future__ import annotations

import sys

from fragmenty_ingest.dead_letters_cli import main as dead_letters
from fragmenty_ingest.main import main as run_service
from fragmenty_ingest.migrate import main as run_migration
from fragmenty_shared.cli import parse_service_arguments


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["migrate"]:
        run_migration(arguments[1:])
        return
    if arguments[:1] == ["dead-letters"]:
        sys.exit(dead_letters(arguments[1:]))
    parse_service_arguments(
        "fragmenty-ingest",
        "Consume observed listings, store state and history, publish price events "
        "(health and metrics on FRAGMENTY_INGEST_PORT). `fragmenty-ingest migrate` upgrades "
        "the database to the current schema; `fragmenty-ingest dead-letters` lists, replays or "
        "drops the dead letters.",
    )
    run_service()


if __name__ == "__main__":
    main()
