"""Fixtures for the unreliable-network tests: a fault server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from urlsession_module.testing import FaultServer


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


# The background tests' real transfer process (ended for real at each test's end).
from tests.with_server.conftest import transfer  # noqa: E402, F401
