"""The one base URL every absolute link is built on: the public URL, else an allowed Host, else the listen address."""

from __future__ import annotations

import logging
import re

from fastapi import Request

from api.settings import Settings

log = logging.getLogger("onemap")

# A Host header is a name or an IP literal and an optional port; anything else (paths, user info, spaces)
# would end up inside our links, so it never matches.
_HOST = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)\.?(?::(?P<port>[0-9]{1,5}))?")
_WILDCARD = ("0.0.0.0", "::", "[::]", "")


def split_host(value: str) -> tuple[str, str | None] | None:
    """(name, port) of a Host header or an allowed-hosts entry, lower-cased; None when it is not a host."""
    m = _HOST.fullmatch(value.strip().lower())
    return (m["name"], m["port"]) if m else None


def _listen_base(listen: str) -> str:
    """host:port of the listen address as clients can use it (a wildcard bind answers on loopback)."""
    host, _, port = listen.rpartition(":")
    if host in _WILDCARD:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


class LinkBase:
    """Decides, per request, the scheme://host[:port][/root] that links start with."""

    def __init__(self, settings: Settings) -> None:
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None
        self.listen = _listen_base(settings.listen)
        entries = settings.allowed_hosts
        if entries is None and self.public_url is None and settings.listen.rpartition(":")[0] in _WILDCARD:
            log.warning("listening on every interface without ONEMAP_PUBLIC_URL or ONEMAP_ALLOWED_HOSTS: "
                        "links name %s unless a request comes in on localhost", self.listen)
        if entries is None:  # default: where we listen, and loopback by name and by number
            entries = (self.listen.rpartition(":")[0] or self.listen, "localhost", "127.0.0.1")
        self.any_port: set[str] = set()
        self.with_port: set[tuple[str, str]] = set()
        for entry in entries:
            parsed = split_host(entry)
            if parsed is None:
                log.warning("ONEMAP_ALLOWED_HOSTS: %r is not a host name; ignored", entry)
            elif parsed[1] is None:
                self.any_port.add(parsed[0])
            else:
                self.with_port.add((parsed[0], parsed[1]))

    @property
    def default(self) -> str:
        """The base URL when there is no request to go by (the public URL, else the listen address)."""
        return self.public_url or f"http://{self.listen}"

    def allows(self, host_header: str | None) -> bool:
        """Whether links may name this Host header (it is one of ours, so echoing it cannot mislead)."""
        parsed = split_host(host_header) if host_header else None
        if parsed is None:
            return False
        name, port = parsed
        return name in self.any_port or (port is not None and (name, port) in self.with_port)

    def for_request(self, request: Request) -> str:
        """The base URL for links in the answer to this request, without a trailing slash."""
        if self.public_url:
            return self.public_url
        if self.allows(request.headers.get("host")):
            return str(request.base_url).rstrip("/")
        root = request.scope.get("root_path", "").rstrip("/")
        return f"{request.url.scheme}://{self.listen}{root}"


def base_url(request: Request) -> str:
    """Where absolute links in this response point (see LinkBase); the one way routers build them."""
    return request.app.state.links.for_request(request)
