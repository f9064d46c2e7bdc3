"""One HTTP/1.1 GET with a deadline for the whole exchange and caps on what is read.

``http.client`` (and every client library built the same way) bounds each socket operation,
not the request: a server that sends one byte every 0.8 s never trips a 2 s timeout and holds
the caller for as long as it likes. Here every connect, handshake, send and receive is given
only the time left before one deadline, so the whole exchange (connect, TLS, headers, body)
ends by it. What is read is capped as well: headers at 64 KiB, the body at a caller's limit
(the rest is never read), so a huge or endless answer costs nothing.

It never follows a redirect (it has no notion of one), speaks only GET, closes the connection
after one answer, and its error messages never hold a header value.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
_READ = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2})(?: |$)")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HttpError(Exception):
    """An answer that is not HTTP as we speak it; the text never holds a header value."""


class DeadlineExceeded(HttpError):
    """The whole exchange did not end by its deadline."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; the first of repeated headers wins
    body: bytes
    truncated: bool  # the body went on past the cap and was not read


class _Reader:
    """Receives from ``sock`` with whatever time is left before ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline
        self.buffer = bytearray()
        self.closed = False

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("deadline passed")
        return left

    def fill(self) -> bool:
        """Read once more into the buffer; False once the peer has closed."""
        if self.closed:
            return False
        self.sock.settimeout(self.remaining())
        try:
            chunk = self.sock.recv(_READ)
        except TimeoutError:
            raise DeadlineExceeded("deadline passed") from None
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def line(self, limit: int) -> bytes:
        """One CRLF- or LF-terminated line (without its end), at most ``limit`` bytes."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                return self.take(end + 1).rstrip(b"\r\n")
            if len(self.buffer) > limit:
                raise HttpError("answer line too long")
            if not self.fill():
                raise HttpError("connection closed in the middle of the answer")


def _connect(scheme: str, host: str, port: int, deadline: float,
             context: ssl.SSLContext | None) -> socket.socket:
    # Not socket.create_connection: it gives each address the whole timeout, so a name with
    # several unreachable addresses would multiply the deadline.
    last: OSError = OSError("the host name resolves to no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("deadline passed while connecting")
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
            break
        except OSError as error:  # TimeoutError too: the next address, if time is left
            sock.close()
            last = error
    else:
        if isinstance(last, TimeoutError) or deadline <= time.monotonic():
            raise DeadlineExceeded("deadline passed while connecting")
        raise last
    if scheme != "https":
        return sock
    assert context is not None
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise DeadlineExceeded("deadline passed")
        # The handshake is one operation for the ssl module: the timeout bounds all of it.
        sock.settimeout(left)
        return context.wrap_socket(sock, server_hostname=host)
    except TimeoutError:
        sock.close()
        raise DeadlineExceeded("deadline passed during the TLS handshake") from None
    except BaseException:
        sock.close()
        raise


def _head(reader: _Reader) -> tuple[int, dict[str, str]]:
    searched = 0  # search only the new bytes (and 3 before them): no quadratic rescans
    while True:
        found = _HEAD_END.search(reader.buffer, searched)
        if found:
            break
        searched = max(len(reader.buffer) - 3, 0)
        if len(reader.buffer) > MAX_HEADER_BYTES:
            raise HttpError(f"answer headers over {MAX_HEADER_BYTES // 1024} KiB")
        if not reader.fill():
            raise HttpError("connection closed before the answer's headers ended"
                            if reader.buffer else "connection closed without an answer")
    if found.start() > MAX_HEADER_BYTES:
        raise HttpError(f"answer headers over {MAX_HEADER_BYTES // 1024} KiB")
    head = reader.take(found.end())[: found.start()]
    lines = head.split(b"\n")
    status = _STATUS_LINE.match(lines[0].rstrip(b"\r"))
    if status is None:
        raise HttpError("not an HTTP/1.x answer")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(f"more than {MAX_HEADERS} answer headers")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, colon, value = raw.rstrip(b"\r").partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpError("malformed answer header")
        headers.setdefault(name.decode("ascii").lower(), value.strip().decode("latin-1"))
    return int(status.group(1)), headers


def _body_with_length(reader: _Reader, length: int, cap: int) -> tuple[bytes, bool]:
    wanted = min(length, cap)
    while len(reader.buffer) < wanted:
        if not reader.fill():
            raise HttpError("connection closed before the answer's body ended")
    return reader.take(wanted), length > cap


def _body_until_close(reader: _Reader, cap: int) -> tuple[bytes, bool]:
    while len(reader.buffer) <= cap and reader.fill():
        pass
    return reader.take(cap), len(reader.buffer) > 0


def _body_chunked(reader: _Reader, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_text = reader.line(1024).split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise HttpError("malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            return bytes(body), False
        want = min(size, cap - len(body))
        data, _ = _body_with_length(reader, want, want)
        body += data
        if want < size:
            return bytes(body), True  # past the cap: the rest is never read
        reader.line(2)  # the CRLF after the chunk's data


def _body(reader: _Reader, status: int, headers: dict[str, str], cap: int) -> tuple[bytes, bool]:
    if status in (204, 304) or 100 <= status < 200:
        return b"", False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _body_chunked(reader, cap)
    length_text = headers.get("content-length")
    if length_text is not None:
        text = length_text.strip()
        if not text.isdigit() or not text.isascii() or len(text) > 18:
            raise HttpError("malformed Content-Length")
        return _body_with_length(reader, int(text), cap)
    return _body_until_close(reader, cap)


def get(scheme: str, host: str, port: int, target: str, headers: dict[str, str], *,
        deadline: float, context: ssl.SSLContext | None = None,
        max_body: int = 64 * 1024) -> Answer:
    """GET ``target`` from ``host``; the answer, or an exception, by ``deadline`` (monotonic).

    Raises ``DeadlineExceeded`` when time runs out, ``HttpError`` for an answer that is not
    HTTP/1.x as expected, ``ssl.SSLError`` and ``OSError`` for transport failures.
    """
    if not target.startswith("/") or not target.isascii() or any(c in target for c in " \r\n"):
        raise ValueError("request target must be an absolute ASCII path without spaces")
    host_header = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        host_header += f":{port}"
    lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}",
             *(f"{name}: {value}" for name, value in headers.items()), "Connection: close"]
    if any(c in line for line in lines for c in "\r\n"):
        raise ValueError("header values must not hold line breaks")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    sock = _connect(scheme, host, port, deadline, context)
    try:
        reader = _Reader(sock, deadline)
        sock.settimeout(reader.remaining())
        try:
            sock.sendall(request)
        except TimeoutError:
            raise DeadlineExceeded("deadline passed while sending") from None
        status, answer_headers = _head(reader)
        body, truncated = _body(reader, status, answer_headers, max_body)
        return Answer(status, answer_headers, body, truncated)
    finally:
        sock.close()
