"""``fragmenty-api`` / ``python -m fragmenty_api``: serve the REST API and pages with uvicorn."""

from __future__ import annotations

import uvicorn

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.cli import parse_service_arguments
from fragmenty_shared.http_server import server_config
from fragmenty_shared.logs import configure_logging


def main() -> None:
    parse_service_arguments(
        "fragmenty-api", "Serve the REST API, chart pages and CSV export on FRAGMENTY_API_PORT."
    )
    settings = ApiSettings()
    configure_logging("api", level=settings.log_level, json_lines=settings.log_json)
    uvicorn.Server(api_server_config(settings)).run()


def api_server_config(settings: ApiSettings) -> uvicorn.Config:
    """The app under the shared HTTP server settings (header limits), on FRAGMENTY_API_PORT."""
    return server_config(
        create_app(settings), settings, port=settings.api_port, log_config=None, proxy_headers=True
    )


if __name__ == "__main__":
    main()
