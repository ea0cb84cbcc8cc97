"""The exposition scanner: ztunnel's text shape, chunk boundaries, early stop, hostile lines."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from istio_cilium_compat.exposition import FamilyScanner, ParseError, parse_labels, parse_sample
from tests.ztunnel import Conn, exposition

FAMILY = "istio_tcp_connections_opened"
CONNS = [
    Conn(
        "source",
        ("bookinfo", "productpage"),
        ("bookinfo", "reviews"),
        "reviews.bookinfo.svc.cluster.local",
        True,
        7,
    ),
    Conn("source", ("bookinfo", "productpage"), ("bookinfo", "reviews"), None, True, 3),
    Conn("destination", ("legacy", "curl"), ("bookinfo", "reviews"), None, False, 2),
    Conn("destination", None, ("bookinfo", "ratings"), None, False, 1),
]
TEXT = exposition(CONNS).encode()


def scan(data: bytes, *, chunk: int | None = None) -> FamilyScanner:
    scanner = FamilyScanner(FAMILY)
    size = chunk or len(data) or 1
    for start in range(0, len(data), size):
        if scanner.feed(data[start : start + size]):
            break
    else:
        scanner.close()
    return scanner


def test_ztunnel_text_gives_every_sample_with_its_labels() -> None:
    scanner = scan(TEXT)
    assert scanner.done and not scanner.eof  # stopped at the next family, before # EOF
    assert scanner.bad_lines == 0
    values = list(scanner.values())
    assert [v for _, v in values] == [7, 3, 2, 1]
    first = values[0][0]
    assert list(first)[:3] == ["reporter", "source_workload", "source_canonical_service"]
    assert first["destination_service"] == "reviews.bookinfo.svc.cluster.local"
    assert first["connection_security_policy"] == "mutual_tls"
    assert first["source_principal"] == "spiffe://cluster.local/ns/bookinfo/sa/productpage"
    assert values[1][0]["destination_service"] == "unknown"
    assert values[2][0]["connection_security_policy"] == "unknown"
    assert values[2][0]["source_principal"] == "unknown"  # plaintext: no mTLS identity
    assert values[3][0]["source_workload_namespace"] == "unknown"
    assert values[3][0]["source_region"] == "unknown"


def test_it_stops_reading_once_the_family_has_ended() -> None:
    """The closed/bytes families that follow are as large as the opened one: never read."""
    scanner = FamilyScanner(FAMILY)
    fed = 0
    for line in TEXT.splitlines(keepends=True):
        fed += len(line)
        if scanner.feed(line):
            break
    assert scanner.done
    assert (
        TEXT[:fed]
        .decode()
        .endswith("# HELP istio_tcp_connections_closed The total number of TCP connections closed.\n")
    )


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000])
def test_chunk_boundaries_do_not_matter(chunk: int) -> None:
    assert scan(TEXT, chunk=chunk).samples == scan(TEXT).samples


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_any_split_gives_the_same_samples(cuts: list[int]) -> None:
    scanner = FamilyScanner(FAMILY)
    pos = 0
    for size in cuts:
        if scanner.feed(TEXT[pos : pos + size]):
            break
        pos += size
    else:
        if scanner.feed(TEXT[pos:]) is False:
            scanner.close()
    assert scanner.samples == scan(TEXT).samples


def test_absent_family_ends_at_eof_with_no_samples() -> None:
    """ztunnel prints a family only once incremented (tests/direct.rs)."""
    scanner = scan(exposition([]).encode())
    assert scanner.done and scanner.eof
    assert scanner.samples == []


def test_prometheus_text_without_eof_and_total_in_type_line() -> None:
    body = (
        b"# HELP istio_tcp_connections_opened_total opened\n"
        b"# TYPE istio_tcp_connections_opened_total counter\n"
        b'istio_tcp_connections_opened_total{reporter="source"} 4 1700000000000\n'
        b'istio_tcp_connections_opened_total{reporter="source"} 5'  # last line, no newline
    )
    scanner = scan(body)
    assert scanner.done and not scanner.eof
    assert [v for _, v in scanner.values()] == [4, 5]


def test_created_samples_exemplars_and_other_families_are_ignored() -> None:
    body = (
        b"# TYPE istio_tcp_connections_opened counter\n"
        b'istio_tcp_connections_opened_total{reporter="source"} 2 # {trace_id="a"} 1.0\n'
        b'istio_tcp_connections_opened_created{reporter="source"} 1.7e9\n'
        b'istio_tcp_connections_opened_totally_else{reporter="x"} 9\n'
        b"# EOF\n"
    )
    scanner = scan(body)
    assert [v for _, v in scanner.values()] == [2]
    assert scanner.eof


def test_a_sample_of_another_family_ends_ours() -> None:
    body = (
        b"# TYPE istio_tcp_connections_opened counter\n"
        b'istio_tcp_connections_opened_total{reporter="source"} 2\n'
        b"unrelated_metric 3\n"
        b'istio_tcp_connections_opened_total{reporter="source"} 99\n'
    )
    scanner = scan(body)
    assert [v for _, v in scanner.values()] == [2]


def test_malformed_lines_are_counted_and_skipped() -> None:
    body = (
        b"# TYPE istio_tcp_connections_opened counter\n"
        b'istio_tcp_connections_opened_total{reporter="source} 2\n'
        b"istio_tcp_connections_opened_total{reporter=source} 2\n"
        b'istio_tcp_connections_opened_total{reporter="source"} many\n'
        b"istio_tcp_connections_opened_total\n"
        b'istio_tcp_connections_opened_total{reporter="destination"} 6\n'
        b"# EOF\n"
    )
    scanner = scan(body)
    assert scanner.bad_lines == 4
    assert [v for _, v in scanner.values()] == [6]
    assert scanner.first_error.startswith("bad label set at")


def test_non_finite_and_negative_values_are_not_counts() -> None:
    body = (
        b"# TYPE istio_tcp_connections_opened counter\n"
        b'istio_tcp_connections_opened_total{a="1"} NaN\n'
        b'istio_tcp_connections_opened_total{a="2"} +Inf\n'
        b'istio_tcp_connections_opened_total{a="3"} -1\n'
        b'istio_tcp_connections_opened_total{a="4"} 2.0\n'
    )
    scanner = scan(body)
    assert len(scanner.samples) == 4
    assert math.isnan(scanner.samples[0][1])
    assert list(scanner.values()) == [({"a": "4"}, 2)]


def test_invalid_utf8_does_not_raise() -> None:
    body = (
        b'# TYPE istio_tcp_connections_opened counter\nistio_tcp_connections_opened_total{a="\xff\xfe"} 1\n'
    )
    assert [v for _, v in scan(body).values()] == [1]


def test_parse_labels_escapes_and_spacing() -> None:
    assert parse_labels(r'a="1", b = "x\"y" ,c="back\\slash",d="new\nline",e=""') == {
        "a": "1",
        "b": 'x"y',
        "c": "back\\slash",
        "d": "new\nline",
        "e": "",
    }
    assert parse_labels('a="1",') == {"a": "1"}
    assert parse_labels("") == {}
    with pytest.raises(ParseError):
        parse_labels('a="1" b="2"')


def test_parse_sample_forms() -> None:
    assert parse_sample('m{a="}{,"} 1') == ("m", {"a": "}{,"}, 1.0)
    assert parse_sample("m 1e3") == ("m", {}, 1000.0)
    assert parse_sample('m{a="1"} 2 123') == ("m", {"a": "1"}, 2.0)
    for bad in ("m", 'm{a="1"}', '{a="1"} 2', 'm{a="1"'):
        with pytest.raises(ParseError):
            parse_sample(bad)
