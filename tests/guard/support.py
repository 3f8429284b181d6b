"""What the guard tests share beyond their data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from wasmscope.telemetry.exporters import _SDK_EXPORTER_LOGGERS


@contextmanager
def sdk_log_filters_kept() -> Iterator[None]:
    """Put the OTLP exporters' loggers' filters back as they were: a Telemetry with
    OTLP installs its filter on them for the whole process, which would hide the SDK's
    messages from the caplog of later tests (the receiver's retry tests read them)."""
    saved = {name: list(logging.getLogger(name).filters) for name in _SDK_EXPORTER_LOGGERS}
    try:
        yield
    finally:
        for name, filters in saved.items():
            logging.getLogger(name).filters[:] = filters
