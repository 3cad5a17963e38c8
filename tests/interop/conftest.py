"""Interop suites run code no one here wrote, installed at test time (PyPI, a Python 3.12 interpreter).

Locally a missing prerequisite skips them, with the reason. Under ``CI=true`` such a skip is a failure:
CI exists to run them, and a silently skipped interop suite is how a broken install goes unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"interop suite could not run under CI=true (it would have skipped): {reason}"
        )
