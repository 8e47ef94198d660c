"""Fixtures of the tool tests; the helpers live in ``tool_fixtures``.

Test modules import helpers from ``tool_fixtures``, never from
``conftest``: several test folders have a conftest.py, and pytest imports
each of them under the same module name.
"""
from pathlib import Path

import pytest
from tool_fixtures import write_tiny_vis


@pytest.fixture(scope='module')
def tiny_vis_workdir(tmp_path_factory) -> Path:
    """A working directory holding ``data/tiny_vis`` (one per test module).

    Tools run with it as their working directory, so the relative paths in
    the tiny config and mmdet's ``.dist_test`` scratch dir land there.
    """
    root = tmp_path_factory.mktemp('tiny_vis')
    write_tiny_vis(root)
    return root
