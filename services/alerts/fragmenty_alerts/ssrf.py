"""Refuse URLs that would make the service call into its own network (SSRF).

Webhook and Apprise URLs are checked when they are saved and again before each request (a name
may resolve elsewhere later). Loopback, private, link-local (which includes the cloud metadata
address 169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified addresses are
refused unless the allowlist setting names the host or a network that holds the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for the user."""


def forbidden(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
    )


@dataclass(frozen=True)
class SsrfPolicy:
    allowed_hosts: frozenset[str]
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, allowlist: Iterable[str]) -> SsrfPolicy:
        hosts, networks = set(), []
        for entry in allowlist:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    def _allowed(self, host: str, address: IpAddress) -> bool:
        return host.lower() in self.allowed_hosts or any(
            address in network for network in self.allowed_networks
        )

    async def check(self, url: str, *, resolve_required: bool = True) -> None:
        """Raise :class:`UnsafeUrl` unless every address ``url``'s host resolves to is public.

        ``resolve_required=False`` lets through hosts that do not resolve at all (an Apprise
        ``discord://<id>/<token>`` has no host to resolve; the plugin calls a public API).
        """
        host = urlsplit(url).hostname
        if not host:
            raise UnsafeUrl("the URL has no host")
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, None, type=socket.SOCK_STREAM
                )
            except OSError as error:
                if resolve_required:
                    raise UnsafeUrl(f"cannot resolve {host}: {error}") from None
                return
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        for address in addresses:
            if forbidden(address) and not self._allowed(host, address):
                raise UnsafeUrl(
                    f"{host} resolves to {address}, a loopback, private, link-local or reserved "
                    "address; such URLs are refused (FRAGMENTY_ALERTS_SSRF_ALLOWLIST lifts this)"
                )
