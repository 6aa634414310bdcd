"""Fixtures for rule tests."""

from __future__ import annotations

import pytest
from rule_messages import MessageFactory, build_message


@pytest.fixture
def mkmsg() -> MessageFactory:
    return build_message
