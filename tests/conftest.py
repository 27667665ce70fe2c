from __future__ import annotations

import os

import pytest
from hypothesis import settings

# A hypothesis deadline is a timing assertion: on a shared, loaded machine it fails at random.
settings.register_profile("aux-secrets", deadline=None)
settings.load_profile("aux-secrets")


@pytest.fixture(autouse=True)
def _private_umask() -> object:
    old = os.umask(0o077)
    yield
    os.umask(old)
