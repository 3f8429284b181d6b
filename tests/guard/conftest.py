"""Fixtures of the guard tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.guard.support import sdk_log_filters_kept


@pytest.fixture(autouse=True)
def _sdk_log_filters() -> Iterator[None]:
    with sdk_log_filters_kept():
        yield
