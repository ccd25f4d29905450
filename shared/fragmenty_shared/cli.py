"""The command line of a long-running service: ``--help`` that explains, and nothing to start.

Services take their configuration from ``FRAGMENTY_*`` environment variables, not arguments; but
``fragmenty-api --help`` must say so rather than start the service (and claim its ports).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

_CONFIGURATION_NOTE = (
    "Configured by FRAGMENTY_* environment variables (or a .env file in the working "
    "directory); .env.example lists them with their defaults."
)


def parse_service_arguments(
    prog: str, description: str, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse a service's (empty) command line: ``--help`` prints and exits, extras are refused."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=_CONFIGURATION_NOTE)
    return parser.parse_args(argv)
