"""The crawler's settings: the shared ones plus where Fragment is and how gently to read it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from fragmenty_shared.settings import Settings


class CrawlerSettings(Settings):
    """Read from ``FRAGMENTY_*`` variables; ``.env.example`` documents each one."""

    fragment_url: str = Field(
        default="https://fragment.com",
        description="Base URL of Fragment (or of the local simulator).",
    )
    crawl_rate: float = Field(
        default=1.0, gt=0, le=100, description="Requests per second when polite (the default)."
    )
    politeness: bool = Field(
        default=True,
        description="Rate limit, one request at a time and AutoThrottle; off only for the simulator.",
    )
    http_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated proxy URLs, used in turn; empty = direct.",
    )
    item_pages: Literal["changed", "all", "none"] = Field(
        default="changed",
        description="Which listings get their item page fetched: changed since the last census, all, none.",
    )
    item_page_cap: int = Field(
        default=100, ge=0, description="At most this many item pages per census."
    )
    history_page_cap: int = Field(
        default=20,
        ge=0,
        description="At most this many 'Show more' pages per item (both histories together).",
    )
    prior_state: Literal["mongo", "memory"] = Field(
        default="mongo",
        description="Where 'changed since the last census' comes from: ingest's listings "
        "collection, or only this process's previous census.",
    )
    heads: bool = Field(
        default=True,
        description="In 'run --every': re-read the heads of the fast-moving feeds (newest "
        "listings, latest sales, auctions ending soonest) between census pages, within the "
        "same request budget (polite mode only; 'run --once' never does).",
    )
    head_period_s: float = Field(
        default=12.0, gt=0, description="How often each 'newest'/'latest sales' head is re-read."
    )
    ending_head_period_s: float = Field(
        default=25.0, gt=0, description="How often each 'ending soonest' head is re-read."
    )
    head_idle_after_s: float = Field(
        default=300.0,
        gt=0,
        description="A head whose reads found nothing new for this long (and, once it found "
        "things, for ten of its mean gaps between finds) is idle: read every "
        "HEAD_IDLE_PERIOD_S instead, until a read finds something again.",
    )
    head_idle_period_s: float = Field(
        default=120.0, gt=0, description="How often an idle head is re-read."
    )
    head_share: float = Field(
        default=0.6, gt=0, le=1, description="At most this share of the budget goes to heads."
    )
    item_share: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Share of the non-head budget item pages get while census pages also wait.",
    )
    sold_full_sweep_s: float = Field(
        default=86400.0,
        ge=0,
        description="After a full pass, sold views are read from the newest sale until a run "
        "of known rows; a full sweep again after this many seconds (0 = always full).",
    )
    max_retries: int = Field(
        default=8, ge=0, description="Retries of a 429/5xx answer before the view fails."
    )
    max_backoff_s: float = Field(
        default=120.0, gt=0, description="Longest wait between retries (and for Retry-After)."
    )
    request_timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    user_agent: str = Field(
        default=(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Safari/537.36"
        ),
        description="Browser-like User-Agent sent with every request.",
    )

    @field_validator("http_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [proxy.strip() for proxy in value.split(",") if proxy.strip()]
        return value
