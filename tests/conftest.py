"""Fixtures shared by the whole test suite."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def mmdet_default_scope() -> None:
    """Build from mmdet's registries in every test.

    A Runner started by an earlier test leaves its own default scope
    current; registry builds would then look in the wrong registry.
    """
    init_default_scope('mmdet')
