"""``fragmenty-alerts`` / ``python -m fragmenty_alerts``: run the alerts service."""

from __future__ import annotations

from fragmenty_alerts.main import serve
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_shared.cli import parse_service_arguments
from fragmenty_shared.event_loop import run


def main() -> None:
    parse_service_arguments(
        "fragmenty-alerts",
        "Deliver saved alert rules (Telegram, webhooks, Apprise, Atom) on FRAGMENTY_ALERTS_PORT.",
    )
    settings = AlertsSettings()
    run(serve(settings), settings.event_loop)


if __name__ == "__main__":
    main()
