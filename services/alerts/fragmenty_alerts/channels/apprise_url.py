"""Any Apprise URL (Discord, Slack, e-mail, ntfy, Matrix, json:// ...) through the Apprise library."""

from __future__ import annotations

import asyncio

import apprise

from fragmenty_alerts.channels import Channel, Outgoing, SendResult
from fragmenty_alerts.ssrf import SsrfPolicy, UnsafeUrl


def apprise_understands(url: str) -> bool:
    instance = apprise.Apprise()
    return bool(instance.add(url))


class AppriseSender:
    def __init__(self, ssrf: SsrfPolicy, timeout_s: float) -> None:
        self._ssrf = ssrf
        self._timeout_s = timeout_s

    async def send(self, channel: Channel, message: Outgoing) -> SendResult:
        url = str(channel.url)
        try:
            await self._ssrf.check(url, resolve_required=False)
        except UnsafeUrl as error:
            return SendResult(False, error=str(error))
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return SendResult(False, error="Apprise does not understand this URL")
        try:
            ok = await asyncio.wait_for(
                notifier.async_notify(body=message.text, title=message.title), self._timeout_s * 2
            )
        except TimeoutError:
            return SendResult(False, error="timed out")
        except Exception as error:  # a plugin's failure is a failed attempt, not a crash
            return SendResult(False, error=f"{type(error).__name__}: {error}"[:300])
        return SendResult(True) if ok else SendResult(False, error="Apprise reported a failure")
