"""Unit tests run without the network: pytest-socket blocks every socket but Unix-domain ones (asyncio's self-pipe,
multiprocessing) for each test under tests/unit, however pytest is invoked (make test-unit, plain pytest, -n 2).

A test that starts its own server on 127.0.0.1 says so with ``@pytest.mark.enable_socket`` and a comment giving
the reason; nothing here ever reaches a host outside the machine.
"""

from __future__ import annotations

import pytest
import pytest_socket


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Runs before the item's fixtures are set up (conftest hooks come before pytest's own), like --disable-socket;
    # pytest-socket's teardown hook restores the real socket after every test.
    if item.get_closest_marker("enable_socket") is None:
        pytest_socket.disable_socket(allow_unix_socket=True)
