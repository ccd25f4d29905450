"""``fragmenty-api`` / ``python -m fragmenty_api``: serve the REST API and pages with uvicorn."""

from __future__ import annotations

import uvicorn

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.cli import parse_service_arguments
from fragmenty_shared.logs import configure_logging


def main() -> None:
    parse_service_arguments(
        "fragmenty-api", "Serve the REST API, chart pages and CSV export on FRAGMENTY_API_PORT."
    )
    settings = ApiSettings()
    configure_logging("api", level=settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
