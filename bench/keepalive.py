"""A plain HTTP/1.1 client on kept-alive connections: what the open-loop load generator
(common.py's open_loop) sends its requests with.

The load generator shares the machine's cores with what it measures, so every millisecond
of CPU it spends per request is taken from the gateway, the services and the broker.
aiohttp's client spent about 0.43 ms per request at 500 req/s (bench/README.md); this one
writes each request in one write and reads its answer by the Content-Length, nothing more.
A connection is taken from those idle to the same host, or opened; it goes back once its
answer has been read in full. An answer this client cannot read that way (chunked, no
Content-Length) fails its request, so a figure never rests on a misread answer.
"""
from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_SAFE = "/?=&:@!$'()*+,;~%"


class BadAnswer(Exception):
    """An answer that is not a status line and headers with a Content-Length."""


class KeepAlive:
    """Requests to any number of hosts, each over its own pool of connections."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._opened: set[asyncio.StreamWriter] = set()
        self._targets: dict[str, tuple[str, int, bytes]] = {}

    async def request(self, method: str, url: str, body: bytes = b"",
                      content_type: bytes = b"application/json") -> tuple[int, bytes]:
        """(status, body) of one request."""
        host, port, head = self._target(url)
        idle = self._idle.setdefault((host, port), [])
        while idle and idle[-1][0].at_eof():  # closed by the server while idle
            self._close(idle.pop()[1])
        reader, writer = idle.pop() if idle else await self._open(host, port)
        writer.write(b"%s %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (method.encode(), head, content_type, len(body), body))
        try:
            status, length, keep = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            payload = await reader.readexactly(length)
        except BaseException:
            self._close(writer)  # what is left of its answer would be read as the next one's
            raise
        if keep:
            idle.append((reader, writer))
        else:
            self._close(writer)
        return status, payload

    def _target(self, url: str) -> tuple[str, int, bytes]:
        """host, port, and the request line's rest (path HTTP/1.1) with the Host header."""
        split = urlsplit(url)
        base = f"{split.scheme}://{split.netloc}"
        cached = self._targets.get(base)
        if cached is None:
            if split.scheme != "http" or split.hostname is None:
                raise ValueError(f"only http://host:port URLs, not {url!r}")
            cached = self._targets[base] = (split.hostname, split.port or 80,
                                            f"\r\nHost: {split.netloc}".encode())
        path = split.path or "/"
        if split.query:
            path += "?" + split.query
        host, port, host_header = cached
        # Percent-encoded as a browser would (a space in a path), what is encoded kept.
        return host, port, quote(path, safe=_SAFE).encode() + b" HTTP/1.1" + host_header

    async def _open(self, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        self._opened.add(writer)
        return reader, writer

    def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        self._opened.discard(writer)

    async def close(self) -> None:
        writers, self._opened = self._opened, set()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        self._idle.clear()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, whether the connection stays open) of an answer's head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise BadAnswer(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    length, keep = None, parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            if not value.strip().isdigit():
                raise BadAnswer(f"Content-Length {value.strip()[:20]!r}")
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() == b"keep-alive"
        elif name == b"transfer-encoding":
            raise BadAnswer(f"Transfer-Encoding {value.strip()!r} is not read here")
    if length is None:
        raise BadAnswer("an answer without Content-Length")
    if not parts[1].isdigit():
        raise BadAnswer(f"status {parts[1][:20]!r}")
    return int(parts[1]), length, keep
