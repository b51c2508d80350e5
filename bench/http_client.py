"""Just enough HTTP/1.1 for the benches' load generators: one keep-alive connection per client, written with
asyncio streams.

Why not httpx: the load generator shares the machine's two cores with the server and PostgreSQL, and httpx
cost ~0.6 ms of CPU per request (and logs every request at INFO), which the server then did not get. These
few lines cost ~0.1 ms.
"""

from __future__ import annotations

import asyncio

__all__ = ["Keepalive", "read_response"]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response (``Content-Length`` framed, as the app answers)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


class Keepalive:
    """One client's connection to the app."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Keepalive:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post_json(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """``POST path`` with a JSON ``body``; the status and body of the answer."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return await read_response(self._reader)

    def close(self) -> None:
        self._writer.close()
