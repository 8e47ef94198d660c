"""Fixtures of the tool tests; the helpers live in ``tool_fixtures``.

Test modules import helpers from ``tool_fixtures``, never from
``conftest``: several test folders have a conftest.py, and pytest imports
each of them under the same module name.
"""
from pathlib import Path

import pytest
from tool_fixtures import write_synthetic_vis


@pytest.fixture(scope='module')
def synthetic_workdir(tmp_path_factory) -> Path:
    """A working directory holding ``data/synthetic_vis`` (one per module).

    Tools run with it as their working directory, so the configs' relative
    data root and mmdet's ``.dist_test`` scratch dir land there.
    """
    root = tmp_path_factory.mktemp('synthetic')
    write_synthetic_vis(root)
    return root
