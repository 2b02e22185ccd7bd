"""tests/unit/conftest.py: every unit test runs with sockets blocked (pytest-socket), Unix-domain ones excepted."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest
import pytest_socket

# pytest-socket warns as it raises; the raise is what these tests check
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")


def test_inet_sockets_are_blocked() -> None:
    for family in (socket.AF_INET, socket.AF_INET6):
        with pytest.raises(pytest_socket.SocketBlockedError):
            socket.socket(family, socket.SOCK_STREAM)


def test_name_lookups_and_http_are_blocked() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.getaddrinfo("localhost", 80)
    with pytest.raises(pytest_socket.SocketBlockedError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)


def test_unix_sockets_still_work() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
    # asyncio's event loop wakes itself through a Unix socket pair
    assert asyncio.run(asyncio.sleep(0, result="done")) == "done"


@pytest.mark.enable_socket  # the marker a test that starts its own 127.0.0.1 server uses
def test_a_marked_test_may_listen_on_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert server.getsockname()[1] > 0
