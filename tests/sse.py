"""A small Server-Sent Events client for tests and benchmarks.

:class:`SSEParser` follows the WHATWG event-stream rules (lines end in CRLF, LF
or CR; ``data:`` lines join with LF; ``:`` starts a comment; one space after the
colon is dropped), so what the tests see is what a browser's EventSource sees.
:func:`read_stream` follows one stream over ``requests``; :class:`StreamSwarm`
holds many streams on raw sockets in one thread (HTTP/1.0, so the body is the
bare event stream), for the concurrency test and the benchmark.
"""

from __future__ import annotations

import dataclasses
import re
import selectors
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

_LINE_END = re.compile(rb"[\r\n]")


@dataclasses.dataclass
class SSEEvent:
    id: str
    event: str
    data: str
    received: float = 0.0  # time.time() when its blank line arrived

    @property
    def int_id(self) -> int:
        return int(self.id)


class SSEParser:
    """Incremental event-stream parser: feed bytes, get complete events back."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id = ""
        self.last_event_id = ""
        self.comments: list[str] = []
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        out: list[SSEEvent] = []
        while True:
            match = _LINE_END.search(self._buffer)
            if match is None:
                return out
            cut = match.start()
            width = 2 if self._buffer[cut : cut + 2] == b"\r\n" else 1
            if self._buffer[cut] == 13 and cut + 1 == len(self._buffer):
                return out  # a CR at the end may be half of a CRLF: wait for more
            line = self._buffer[:cut].decode("utf-8")
            self._buffer = self._buffer[cut + width :]
            event = self._line(line)
            if event is not None:
                out.append(event)

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self.last_event_id, self._event or "message", "\n".join(self._data), time.time())
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


@dataclasses.dataclass
class StreamRead:
    """What one connection delivered."""

    status: int
    headers: dict[str, str]
    events: list[SSEEvent]
    parser: SSEParser
    ended: bool  # the server closed the stream (as opposed to the reader stopping)


def read_stream(
    url: str,
    *,
    session: requests.Session | None = None,
    last_event_id: str | int | None = None,
    query: dict | None = None,
    until: Callable[[list[SSEEvent], SSEParser], bool] | None = None,
    timeout: float = 120.0,
) -> StreamRead:
    """Follow ``url`` until the server ends the stream or ``until(events, parser)`` holds.

    ``timeout`` bounds the whole read: a stream still open then is a failure.
    """
    http = session or requests.Session()
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    deadline = time.monotonic() + timeout
    with http.get(url, headers=headers, params=query, stream=True, timeout=(10, timeout)) as response:
        parser = SSEParser()
        events: list[SSEEvent] = []
        if response.status_code != 200:
            return StreamRead(response.status_code, dict(response.headers), events, parser, True)
        for chunk in response.iter_content(chunk_size=None):
            events.extend(parser.feed(chunk))
            if until is not None and until(events, parser):
                return StreamRead(200, dict(response.headers), events, parser, False)
            if time.monotonic() > deadline:
                raise AssertionError(f"stream {url} still open after {timeout} s")
        return StreamRead(200, dict(response.headers), events, parser, True)


class StreamSwarm:
    """Many concurrent SSE connections driven by one selector loop.

    Each connection is a raw HTTP/1.0 GET, so the answer's body is the event
    stream itself (no chunked coding) and the server closes it when the stream ends.
    """

    def __init__(self, url: str, count: int, *, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._request = (
            f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n{extra}\r\n"
        ).encode()
        self.count = count
        self.parsers = [SSEParser() for _ in range(count)]
        self.events: list[list[SSEEvent]] = [[] for _ in range(count)]
        self.status: list[int | None] = [None] * count
        self.closed = [False] * count
        self.errors: dict[int, str] = {}  # connection index → body of a non-200 answer
        self._head = [b""] * count
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []

    def connect(self, pace: int = 50) -> None:
        """Open every connection (``pace`` at a time, draining in between)."""
        for index in range(self.count):
            sock = socket.create_connection(self._address, timeout=30)
            sock.sendall(self._request)
            sock.setblocking(False)
            self._sockets.append(sock)
            self._selector.register(sock, selectors.EVENT_READ, index)
            if index % pace == pace - 1:
                self.pump(0.0)

    def pump(self, timeout: float) -> None:
        """Read whatever has arrived within ``timeout`` seconds."""
        for key, _ in self._selector.select(timeout):
            self._read(key.fileobj, key.data)

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not self._selector.get_map():
                return condition()
            self.pump(0.2)
        return True

    def all_closed(self) -> bool:
        return all(self.closed)

    def _read(self, sock: socket.socket, index: int) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(sock)
            sock.close()
            self.closed[index] = True
            return
        if self.status[index] is None:
            self._head[index] += data
            head, sep, body = self._head[index].partition(b"\r\n\r\n")
            if not sep:
                return
            self.status[index] = int(head.split(b" ", 2)[1])
            self._head[index] = b""
            if self.status[index] != 200:
                self.errors[index] = body.decode(errors="replace")
                return
            data = body
        self.events[index].extend(self.parsers[index].feed(data))

    def close(self) -> None:
        for sock in self._sockets:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._selector.close()
