"""The REST API under ``/api/v1``: accounts, rules, channels, the delivery log and rule feeds.

Everything under ``/api/v1/alerts`` needs ``Authorization: Bearer <key>``. An account sees only
its own things: another account's rule, channel or delivery is answered 404, exactly as one that
does not exist, so ids reveal nothing.
"""

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from fragmenty_alerts.accounts import Accounts, new_id
from fragmenty_alerts.channels import Channel, ChannelKind
from fragmenty_alerts.channels.apprise_url import apprise_understands
from fragmenty_alerts.channels.webhook import new_secret, secret_key
from fragmenty_alerts.delivery import Deliveries
from fragmenty_alerts.delivery_log import BadCursor, DeliveryStatus, find_entry, read_page
from fragmenty_alerts.directory import Directory, rule_of
from fragmenty_alerts.feed import atom_feed
from fragmenty_alerts.rules import Rule, RuleChange, RuleSpec
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_alerts.ssrf import SsrfPolicy, UnsafeUrl
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.patterns import PatternError

MAX_PAGE = 200


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100)


class AccountCreated(BaseModel):
    account_id: str
    api_key: str = Field(
        description="Shown only now; store it. Send it as 'Authorization: Bearer <key>'."
    )


class RulePublic(BaseModel):
    id: str
    spec: RuleSpec
    feed_url: str
    created_at: datetime
    updated_at: datetime


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["webhook", "apprise"]
    url: str = Field(min_length=8, max_length=2000)
    secret: str | None = Field(
        default=None, description="Webhooks: a 'whsec_' secret of your own; one is made when unset."
    )


class ChannelChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    rotate_secret: bool = Field(
        default=False, description="Add a new secret; both sign until retired."
    )
    retire_old_secrets: bool = Field(default=False, description="Keep only the newest secret.")


class ChannelPublic(BaseModel):
    id: str
    kind: ChannelKind
    url: str | None
    chat_id: int | None
    secrets: list[str] | None = Field(description="Webhook signing secrets, newest last.")
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None


class DeliveryPublic(BaseModel):
    id: str
    delivery_id: str
    attempt: int
    at: datetime
    channel_id: str
    channel_kind: str
    rule_id: str | None
    event_id: str | None
    webhook_id: str
    status: str
    response_code: int | None = None
    error: str | None = None


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None


def _limit_error(what: str, limit: int, setting: str) -> HTTPException:
    return HTTPException(
        409,
        detail={"field": what, "msg": f"an account may have at most {limit} {what} ({setting})"},
    )


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(
        422, detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


def build_api(
    store: AlertsStore,
    directory: Directory,
    accounts: Accounts,
    deliveries: Deliveries,
    settings: AlertsSettings,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    bearer = HTTPBearer(auto_error=False)
    ssrf = SsrfPolicy.of(settings.alerts_ssrf_allowlist)
    public_base = f"http://{settings.host}:{settings.alerts_port}"

    async def current_account(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None:
            raise HTTPException(
                401,
                "send your API key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        account_id = await accounts.account_of(credentials.credentials)
        if account_id is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        return account_id

    Account = Annotated[str, Depends(current_account)]

    def feed_url(request: Request | None, document: Document) -> str:
        base = str(request.base_url).rstrip("/") if request is not None else public_base
        return (
            f"{base}/api/v1/alerts/rules/{document['_id']}/feed.atom?token={document['feed_token']}"
        )

    def rule_public(request: Request, document: Document) -> RulePublic:
        return RulePublic(
            id=document["_id"],
            spec=RuleSpec.model_validate(document["spec"]),
            feed_url=feed_url(request, document),
            created_at=document["created_at"],
            updated_at=document["updated_at"],
        )

    async def own(collection_name: str, item_id: str, account_id: str) -> Document:
        document = await store.database[collection_name].find_one({"_id": item_id})
        if document is None or document.get("account_id") != account_id:
            raise HTTPException(
                404, f"no such {collection_name.removeprefix('alert_').rstrip('s')}: {item_id}"
            )
        return document

    def check_channels(spec: RuleSpec, account_id: str) -> None:
        for channel_id in spec.channels or []:
            channel = directory.channels.get(channel_id)
            if channel is None or channel.account_id != account_id:
                raise _field_error("channels", f"no such channel: {channel_id}")

    def compiled(document: Document) -> Rule:
        """The rule, compiled; raises ``PatternError``. Callers store it first, then put it in
        the directory (the other order could let a reload that read before the write drop it)."""
        rule = rule_of(document, raise_errors=True)
        assert rule is not None
        return rule

    # -- accounts ---------------------------------------------------------------------------

    @router.post("/accounts", status_code=201, response_model=AccountCreated, tags=["accounts"])
    async def create_account(body: AccountCreate | None = None) -> AccountCreated:
        account_id, key = await accounts.create(body.name if body else None)
        return AccountCreated(account_id=account_id, api_key=key)

    @router.get("/accounts/me", tags=["accounts"])
    async def whoami(account_id: Account) -> dict[str, Any]:
        rules = await store.rules.count_documents({"account_id": account_id})
        return {
            "account_id": account_id,
            "rules": rules,
            "channels": len(directory.channels_of(account_id)),
        }

    # -- rules ------------------------------------------------------------------------------

    @router.post("/alerts/rules", status_code=201, response_model=RulePublic, tags=["rules"])
    async def create_rule(spec: RuleSpec, account_id: Account, request: Request) -> RulePublic:
        if (
            await store.rules.count_documents({"account_id": account_id})
            >= settings.alerts_max_rules_per_account
        ):
            raise _limit_error(
                "rules",
                settings.alerts_max_rules_per_account,
                "FRAGMENTY_ALERTS_MAX_RULES_PER_ACCOUNT",
            )
        check_channels(spec, account_id)
        now = datetime.now(UTC)
        document = {
            "_id": new_id("rl"),
            "account_id": account_id,
            "spec": spec.model_dump(mode="json"),
            "feed_token": secrets.token_urlsafe(18),
            "created_at": now,
            "updated_at": now,
        }
        try:
            rule = compiled(document)
        except PatternError as error:
            raise _field_error("pattern", str(error)) from None
        await store.rules.insert_one(document)
        directory.put_rule(rule)
        await directory.changed()
        return rule_public(request, document)

    @router.get("/alerts/rules", response_model=list[RulePublic], tags=["rules"])
    async def list_rules(account_id: Account, request: Request) -> list[RulePublic]:
        documents = await store.rules.find({"account_id": account_id}).to_list(None)
        return [
            rule_public(request, document)
            for document in sorted(documents, key=lambda d: d["created_at"])
        ]

    @router.get("/alerts/rules/{rule_id}", response_model=RulePublic, tags=["rules"])
    async def get_rule(rule_id: str, account_id: Account, request: Request) -> RulePublic:
        return rule_public(request, await own(store.rules.name, rule_id, account_id))

    @router.patch("/alerts/rules/{rule_id}", response_model=RulePublic, tags=["rules"])
    async def change_rule(
        rule_id: str, change: RuleChange, account_id: Account, request: Request
    ) -> RulePublic:
        document = await own(store.rules.name, rule_id, account_id)
        merged = {**document["spec"], **change.model_dump(mode="json", exclude_unset=True)}
        try:
            spec = RuleSpec.model_validate(merged)
        except ValueError as error:
            raise HTTPException(422, detail=str(error)) from None
        check_channels(spec, account_id)
        document = {
            **document,
            "spec": spec.model_dump(mode="json"),
            "updated_at": datetime.now(UTC),
        }
        try:
            rule = compiled(document)
        except PatternError as error:
            raise _field_error("pattern", str(error)) from None
        await store.rules.replace_one({"_id": rule_id}, document)
        directory.put_rule(rule)
        await directory.changed()
        return rule_public(request, document)

    @router.delete("/alerts/rules/{rule_id}", status_code=204, tags=["rules"])
    async def delete_rule(rule_id: str, account_id: Account) -> Response:
        await own(store.rules.name, rule_id, account_id)
        await store.rules.delete_one({"_id": rule_id})
        directory.remove_rule(rule_id)
        await directory.changed()
        return Response(status_code=204)

    @router.get("/alerts/rules/{rule_id}/feed.atom", tags=["rules"], response_class=Response)
    async def rule_feed(
        rule_id: str, request: Request, token: Annotated[str, Query(max_length=100)]
    ) -> Response:
        document = await store.rules.find_one({"_id": rule_id})
        if document is None or not secrets.compare_digest(str(document.get("feed_token")), token):
            raise HTTPException(404, f"no such feed: {rule_id}")
        entries = await store.feed.find({"rule_id": rule_id}).to_list(None)
        entries.sort(key=lambda entry: entry["at"], reverse=True)
        body = atom_feed(
            document,
            entries[: settings.alerts_feed_entries],
            feed_url(request, document),
            settings.alerts_public_url,
        )
        return Response(body, media_type="application/atom+xml")

    # -- channels ---------------------------------------------------------------------------

    def channel_public(channel: Channel) -> ChannelPublic:
        return ChannelPublic(
            id=channel.channel_id,
            kind=channel.kind,
            url=channel.url,
            chat_id=channel.chat_id,
            secrets=list(channel.secrets) if channel.kind is ChannelKind.WEBHOOK else None,
            enabled=channel.enabled,
            disabled_reason=channel.disabled_reason,
            failing_since=channel.failing_since,
        )

    @router.post(
        "/alerts/channels", status_code=201, response_model=ChannelPublic, tags=["channels"]
    )
    async def create_channel(body: ChannelCreate, account_id: Account) -> ChannelPublic:
        if len(directory.channels_of(account_id)) >= settings.alerts_max_channels_per_account:
            raise _limit_error(
                "channels",
                settings.alerts_max_channels_per_account,
                "FRAGMENTY_ALERTS_MAX_CHANNELS_PER_ACCOUNT",
            )
        kind = ChannelKind(body.kind)
        if kind is ChannelKind.WEBHOOK and not body.url.startswith(("https://", "http://")):
            raise _field_error("url", "a webhook URL starts with https:// (or http://)")
        if kind is ChannelKind.APPRISE and not apprise_understands(body.url):
            raise _field_error(
                "url", "Apprise does not understand this URL (see its list of services)"
            )
        try:
            await ssrf.check(body.url, resolve_required=kind is ChannelKind.WEBHOOK)
        except UnsafeUrl as error:
            raise _field_error("url", str(error)) from None
        secrets_in_use: list[str] = []
        if kind is ChannelKind.WEBHOOK:
            secret = body.secret or new_secret()
            try:
                secret_key(secret)
            except ValueError as error:
                raise _field_error("secret", str(error)) from None
            secrets_in_use = [secret]
        document = {
            "_id": new_id("ch"),
            "account_id": account_id,
            "kind": kind.value,
            "url": body.url,
            "secrets": secrets_in_use,
            "enabled": True,
            "created_at": datetime.now(UTC),
        }
        await store.channels.insert_one(document)
        channel = Channel.of(document)
        directory.put_channel(channel)
        await directory.changed()
        return channel_public(channel)

    @router.get("/alerts/channels", response_model=list[ChannelPublic], tags=["channels"])
    async def list_channels(account_id: Account) -> list[ChannelPublic]:
        documents = await store.channels.find({"account_id": account_id}).to_list(None)
        return [channel_public(Channel.of(document)) for document in documents]

    @router.get("/alerts/channels/{channel_id}", response_model=ChannelPublic, tags=["channels"])
    async def get_channel(channel_id: str, account_id: Account) -> ChannelPublic:
        return channel_public(Channel.of(await own(store.channels.name, channel_id, account_id)))

    @router.patch("/alerts/channels/{channel_id}", response_model=ChannelPublic, tags=["channels"])
    async def change_channel(
        channel_id: str, change: ChannelChange, account_id: Account
    ) -> ChannelPublic:
        document = await own(store.channels.name, channel_id, account_id)
        fields: dict[str, Any] = {}
        if change.enabled is not None:
            fields["enabled"] = change.enabled
            if change.enabled:
                fields.update(disabled_reason=None, disabled_at=None, failing_since=None)
        secrets_in_use = list(document.get("secrets") or [])
        if change.rotate_secret:
            secrets_in_use.append(new_secret())
        if change.retire_old_secrets:
            secrets_in_use = secrets_in_use[-1:]
        if secrets_in_use != list(document.get("secrets") or []):
            fields["secrets"] = secrets_in_use
        if fields:
            await store.channels.update_one({"_id": channel_id}, {"$set": fields})
            document = {**document, **fields}
            directory.put_channel(Channel.of(document))
            await directory.changed()
        return channel_public(Channel.of(document))

    @router.delete("/alerts/channels/{channel_id}", status_code=204, tags=["channels"])
    async def delete_channel(channel_id: str, account_id: Account) -> Response:
        await own(store.channels.name, channel_id, account_id)
        await store.channels.delete_one({"_id": channel_id})
        directory.remove_channel(channel_id)
        await directory.changed()
        return Response(status_code=204)

    @router.post("/alerts/telegram/link", status_code=201, tags=["channels"])
    async def telegram_link(account_id: Account) -> dict[str, Any]:
        """A one-time code: send ``/start <code>`` to the bot to link that chat to this account."""
        code = secrets.token_urlsafe(12)
        await store.meta.insert_one(
            {
                "_id": f"telegram-link|{code}",
                "account_id": account_id,
                "created_at": datetime.now(UTC),
            }
        )
        return {"code": code, "send_to_bot": f"/start {code}"}

    # -- deliveries -------------------------------------------------------------------------

    @router.get("/alerts/deliveries", response_model=DeliveryPage, tags=["deliveries"])
    async def list_deliveries(
        account_id: Account,
        cursor: Annotated[
            str | None,
            Query(
                max_length=300,
                description="`next_cursor` of the previous page; omit it for the newest entries.",
            ),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_PAGE, description=f"Entries per page, 1 to {MAX_PAGE}.")
        ] = 50,
        status: Annotated[
            DeliveryStatus | None, Query(description="Only the attempts with this outcome.")
        ] = None,
    ) -> DeliveryPage:
        """The account's delivery attempts, newest first, a page at a time: follow
        `next_cursor` (null on the last page). A page reads only its own entries."""
        try:
            page = await read_page(store, account_id, limit=limit, status=status, cursor=cursor)
        except BadCursor as error:
            raise HTTPException(
                422,
                detail=[{"loc": ["query", "cursor"], "msg": str(error), "type": "value_error"}],
            ) from None
        return DeliveryPage(
            items=[DeliveryPublic.model_validate({**d, "id": d["_id"]}) for d in page.entries],
            next_cursor=page.next_cursor,
        )

    @router.post("/alerts/deliveries/{log_id:path}/retry", status_code=202, tags=["deliveries"])
    async def retry_delivery(log_id: str, account_id: Account) -> dict[str, Any]:
        entry = await find_entry(store, log_id)
        if entry is None or entry.get("account_id") != account_id:
            raise HTTPException(404, f"no such delivery: {log_id}")
        channel = directory.channels.get(entry["channel_id"])
        if channel is None or not channel.enabled:
            raise HTTPException(409, "the channel is disabled or deleted; re-enable it first")
        document = await deliveries.replay(entry)
        return {"delivery_id": document["_id"], "status": "queued"}

    return router
