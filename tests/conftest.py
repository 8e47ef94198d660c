"""Fixtures shared by the whole test suite."""
import itertools

import pytest
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

# names of the per-test message hubs: a new name makes a new current hub
_hub_names = (f'pytest_{i}' for i in itertools.count())


@pytest.fixture(autouse=True)
def mmdet_default_scope() -> None:
    """Build from mmdet's registries in every test.

    A Runner started by an earlier test leaves its own default scope
    current; registry builds would then look in the wrong registry.
    """
    init_default_scope('mmdet')


@pytest.fixture(autouse=True)
def fresh_message_hub() -> MessageHub:
    """A new current MessageHub for every test, at iteration 0.

    Code outside a runner (MSSTSVIS's adversarial warm-up, the loss guard)
    reads the iteration from the current hub, which is otherwise the one
    the last Runner of an earlier test left at its last iteration. Which
    Runner that is depends on the clock: a Runner reuses, without making
    it current, the hub of an earlier Runner of the same config started in
    the same second (the hub is named after the config and the time).
    """
    return MessageHub.get_instance(next(_hub_names))
