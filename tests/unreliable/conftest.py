"""Fixtures for the unreliable-network tests: a fault server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from urlsession_module.testing import FaultServer


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv
