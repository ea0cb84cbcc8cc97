"""The collector's standard-library transport: TLS with the cluster CA, keep-alive, counting, errors."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from istio_cilium_compat.collect import client_from_kubeconfig, collect
from istio_cilium_compat.rules import evaluate
from istio_cilium_compat.transport import KubeTransport
from tests.clusters import healthy
from tests.fakekube import FakeKube
from tests.fakekube.server import TLS_DIR


def test_https_with_the_cluster_ca_one_handshake_for_every_request(tmp_path: Path) -> None:
    with FakeKube(healthy(), tls=True) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        api = client_from_kubeconfig(str(fake.write_kubeconfig(tmp_path / "kc")), None)
        reads = collect(api)
        seen = len(fake.requests)
        api.close()
    assert reads.problems == ()
    assert evaluate(reads.snapshot()).verdict.value == "compatible"
    assert reads.requests == seen == api.transport.requests
    assert api.transport.connections == 1


def test_a_server_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    with FakeKube(healthy(), tls=True) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kc", ca=TLS_DIR / "other-ca.crt")
        reads = collect(client_from_kubeconfig(str(kubeconfig), None))
        assert fake.requests == []
    ((resource, kind, message),) = [(p.resource, p.kind, p.message) for p in reads.problems]
    assert (resource, kind) == ("Kubernetes API", "unreachable")
    assert message.startswith("ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED]")


def test_plain_http_keeps_one_connection(tmp_path: Path) -> None:
    with FakeKube(healthy()) as fake:
        api = client_from_kubeconfig(str(fake.write_kubeconfig(tmp_path / "kc")), None)
        reads = collect(api)
        again = collect(api)
    assert reads.requests == again.requests == 19
    assert api.transport.connections == 1


# ----------------------------------------------------------------------------- a scripted server


BIG = 1024 * 1024


class _Script(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "json"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        body = b"x" * BIG if self.mode == "big" else b'{"ok": true}'
        headers = {"Content-Type": "application/json"}
        if self.mode == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        if self.mode == "close":
            headers["Connection"] = "close"
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) + (10 if self.mode == "short" else 0)))
        self.end_headers()
        self.wfile.write(body)
        if self.mode == "short":  # fewer bytes than announced, then the connection ends
            self.close_connection = True
        if self.mode == "drop-idle":  # keep-alive promised, then closed while idle
            self.wfile.flush()
            self.close_connection = True


@contextmanager
def scripted(mode: str) -> Iterator[str]:
    handler = type("Handler", (_Script,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def no_tls() -> object:
    raise AssertionError("no TLS context is built for plain http")


@pytest.mark.parametrize(("mode", "connections"), [("json", 1), ("gzip", 1), ("close", 3), ("drop-idle", 3)])
def test_responses_and_reconnections(mode: str, connections: int) -> None:
    transport = KubeTransport(no_tls)  # type: ignore[arg-type]
    with scripted(mode) as url, httpx2.Client(transport=transport, timeout=2) as client:
        for _ in range(3):
            if mode == "drop-idle":
                threading.Event().wait(0.05)  # let the server's close arrive before the next request
            response = client.get(f"{url}/api/v1/pods?limit=500")
            assert (response.status_code, response.json()) == (200, {"ok": True})
    assert (transport.requests, transport.connections) == (3, connections)


def test_refused_connection_is_connect_error() -> None:
    with scripted("json") as url:
        pass
    transport = KubeTransport(no_tls)  # type: ignore[arg-type]
    with httpx2.Client(transport=transport, timeout=1) as client, pytest.raises(httpx2.ConnectError):
        client.get(url)
    assert transport.requests == 0


def test_other_schemes_are_refused() -> None:
    transport = KubeTransport(no_tls)  # type: ignore[arg-type]
    with pytest.raises(httpx2.UnsupportedProtocol):
        transport.handle_request(httpx2.Request("GET", "ftp://127.0.0.1/x"))


def test_a_body_abandoned_midway_closes_its_connection() -> None:
    """The runtime probe stops reading metrics early: that connection is closed, not drained."""
    transport = KubeTransport(no_tls)  # type: ignore[arg-type]
    with scripted("big") as url, httpx2.Client(transport=transport, timeout=2) as client:
        with client.stream("GET", f"{url}/metrics") as response:
            first = next(response.iter_raw())
            assert 0 < len(first) < BIG
        whole = client.get(f"{url}/metrics")
        assert len(whole.content) == BIG
        again = client.get(f"{url}/metrics")
        assert len(again.content) == BIG
    assert (transport.requests, transport.connections) == (3, 2)


def test_a_body_shorter_than_announced_is_a_protocol_error() -> None:
    transport = KubeTransport(no_tls)  # type: ignore[arg-type]
    with (
        scripted("short") as url,
        httpx2.Client(transport=transport, timeout=2) as client,
        pytest.raises(httpx2.RemoteProtocolError, match="10 bytes short"),
    ):
        client.get(url)
