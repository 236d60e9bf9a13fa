"""Root pytest configuration (seen by ``pytest tests``, ``pytest book --nbmake`` and both)."""

import pytest


def pytest_collection_modifyitems(items):
    # pyproject's pytest-timeout limit (600 s) is for the unit tests; a chapter notebook runs
    # for minutes to hours depending on the profile and has nbmake's --nbmake-timeout per cell.
    for item in items:
        if type(item).__module__.startswith("nbmake"):
            item.add_marker(pytest.mark.timeout(0))
