"""The collector's HTTP transport: HTTP/1.1 over the standard library, for lightkube.

lightkube's `Client(transport=...)` takes any httpx2 transport; this one is the only
code under the collector that touches sockets. It exists for two reasons:

- Requests are counted where they are sent (pages included), which lightkube itself
  offers no public way to see.
- httpx2's own transport is httpcore2, whose import pulls in h11, h2, hpack, anyio
  and truststore: about 35 ms of every hook (measured with `-X importtime`, see
  docs/performance.md), for a client that sends a few sequential GETs to one server.
  `http.client` does that with one kept-alive connection, and `ssl` verifies the
  server with the context the collector hands over (the cluster's CA alone).

Bodies are read as the caller iterates them: lightkube (through httpx2) reads each one
whole, the runtime probe stops reading metrics as soon as it has what it needs (the
connection is then closed rather than drained). Failures are raised as the httpx2
exceptions httpcore2 would have given (ConnectError, ConnectTimeout, ReadTimeout,
ReadError, RemoteProtocolError), which is what lightkube's callers and the collector's
error handling expect. A connection the server closed while idle is replaced before a
request is sent on it; a request once sent is never sent again (as httpcore2: no retries).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import sys
from collections.abc import Callable, Iterator

import httpx2

SslContext = Callable[[], ssl.SSLContext]
Key = tuple[str, str, int]


class KubeTransport(httpx2.BaseTransport):
    """Sequential HTTP/1.1 requests on one kept-alive connection per server, counted."""

    def __init__(self, ssl_context: SslContext) -> None:
        self._ssl_factory = ssl_context
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Key, http.client.HTTPConnection] = {}
        """Connections ready for a request; one whose body is being read is not here."""
        self.requests = 0
        """Requests sent (every page of a list counts)."""
        self.connections = 0
        """Connections opened (TLS handshakes, for https)."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send one request; the body is read as the caller iterates it (or all of it, by httpx2)."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        timeouts = request.extensions.get("timeout") or {}
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        connection = self._take(key, timeouts.get("connect"), request)
        if connection.sock is not None:
            connection.sock.settimeout(timeouts.get("read"))
        body = request.read()
        self.requests += 1
        try:
            connection.putrequest(
                request.method, url.raw_path.decode("ascii"), skip_host=True, skip_accept_encoding=True
            )
            for name, value in request.headers.multi_items():
                connection.putheader(name, value)
            connection.endheaders(body or None)
        except TimeoutError as exc:
            connection.close()
            raise httpx2.WriteTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            connection.close()
            raise httpx2.WriteError(str(exc), request=request) from exc
        try:
            response = connection.getresponse()
        except Exception as exc:
            connection.close()
            raise _read_error(exc, request) from exc
        return httpx2.Response(
            status_code=response.status,
            headers=response.getheaders(),
            stream=_Body(self, key, connection, response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": response.reason.encode("ascii", "replace"),
            },
        )

    def close(self) -> None:
        """Close every idle connection (one still being read is closed by its body)."""
        for connection in self._idle.values():
            connection.close()
        self._idle.clear()

    def _take(self, key: Key, timeout: float | None, request: httpx2.Request) -> http.client.HTTPConnection:
        """The idle connection to `key` if the server kept it open, else a new one."""
        connection = self._idle.pop(key, None)
        if connection is not None:
            if _reusable(connection):
                return connection
            connection.close()
        scheme, host, port = key
        if scheme == "https":
            connection = _HTTPSConnection(host, port, timeout=timeout, context=self._context())
        else:
            connection = _HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx2.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS verification (ssl.SSLError)
            connection.close()
            raise httpx2.ConnectError(str(exc), request=request) from exc
        self.connections += 1
        return connection

    def _release(
        self,
        key: Key,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        *,
        whole: bool,
    ) -> None:
        """A body is done with: keep its connection if it was read to the end, else close it."""
        response.close()
        if whole and not response.will_close and key not in self._idle:
            self._idle[key] = connection
        else:
            connection.close()

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = self._ssl_factory()
        return self._ssl


def _ascii(host: str) -> str | bytes:
    """The server name as `socket` and `ssl` take it without the `idna` codec.

    Given a `str`, both encode it with `idna`, whose import (with `stringprep`) costs about
    1.4 ms per hook; API server names (an IP address in a pod, a DNS name in a kubeconfig)
    are ASCII, and bytes are taken as they are.
    """
    return host.encode("ascii") if host.isascii() else host


class _HTTPConnection(http.client.HTTPConnection):
    """TCP to the API server (no proxy tunnel: the collector never uses one)."""

    def connect(self) -> None:
        sys.audit("http.client.connect", self, self.host, self.port)
        # getaddrinfo takes the host as bytes too (typeshed says str only).
        self.sock = socket.create_connection((_ascii(self.host), self.port), self.timeout)  # type: ignore[arg-type]
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    """TLS to the API server, verified with the context the collector built."""

    def __init__(self, host: str, port: int, *, timeout: float | None, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls = context

    def connect(self) -> None:
        _HTTPConnection.connect(self)  # type: ignore[arg-type]
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=_ascii(self.host))


class _Body(httpx2.SyncByteStream):
    """A response body read as it is iterated."""

    CHUNK = 64 * 1024

    def __init__(
        self,
        transport: KubeTransport,
        key: Key,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx2.Request,
    ) -> None:
        self._transport, self._key, self._connection = transport, key, connection
        self._response, self._request = response, request
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._response.read1(self.CHUNK)
            except Exception as exc:
                self._connection.close()
                self._released = True
                raise _read_error(exc, self._request) from exc
            if not chunk:
                missing = self._response.length  # Content-Length not yet received (None: chunked)
                if missing:
                    self._release(whole=False)
                    raise httpx2.RemoteProtocolError(
                        f"peer closed connection without sending complete message body ({missing} bytes short)",
                        request=self._request,
                    )
                self._release(whole=True)
                return
            yield chunk

    def close(self) -> None:
        """Hand the connection back (read to the end) or close it (abandoned mid-body)."""
        self._release(whole=False)

    def _release(self, *, whole: bool) -> None:
        if not self._released:
            self._released = True
            self._transport._release(self._key, self._connection, self._response, whole=whole)


def _read_error(exc: Exception, request: httpx2.Request) -> Exception:
    """What httpcore2 would have raised for a failure while reading a response."""
    if isinstance(exc, TimeoutError):
        return httpx2.ReadTimeout(str(exc) or "timed out", request=request)
    if isinstance(exc, http.client.RemoteDisconnected):
        return httpx2.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    if isinstance(exc, http.client.IncompleteRead):
        return httpx2.RemoteProtocolError(
            f"peer closed connection without sending complete message body: {exc}", request=request
        )
    if isinstance(exc, http.client.HTTPException):
        return httpx2.RemoteProtocolError(f"{type(exc).__name__}: {exc}", request=request)
    if isinstance(exc, OSError):
        return httpx2.ReadError(str(exc), request=request)
    return exc


def _reusable(connection: http.client.HTTPConnection) -> bool:
    """An idle connection the server has not closed: nothing to read on it yet."""
    sock = connection.sock
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
