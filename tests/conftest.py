from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _private_umask() -> object:
    old = os.umask(0o077)
    yield
    os.umask(old)
