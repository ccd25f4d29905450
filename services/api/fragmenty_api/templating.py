"""The pages' Jinja environment and the config every page hands its scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from fragmenty_api.deps import ApiState

PACKAGE_DIR = Path(__file__).parent

templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
# Exact amounts with thousands separators: 1234567.5 -> 1,234,567.5.
templates.env.filters["grouped"] = lambda amount: f"{amount:,}"


def page_config(state: ApiState, **data: Any) -> dict[str, Any]:
    """What a page's scripts read from its JSON block: the notifier's address and its data."""
    return {"notifierUrl": state.settings.notifier_public_url, **data}
