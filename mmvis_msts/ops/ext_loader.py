"""Loader of the compiled ops (``mmvis_msts._ext``).

The role of ``mmcv.utils.ext_loader.load_ext``, whose ``mmcv.`` prefix is
hard-wired: import the extension and check every symbol at import time, so
a stale build fails here with the missing name instead of deep in a model.
"""
import importlib
from types import ModuleType
from typing import Optional, Sequence

import torch  # noqa: F401  (loads libtorch, which the extension links to)

PACKAGE = 'mmvis_msts'


def load_ext(name: str, funcs: Sequence[str]) -> Optional[ModuleType]:
    """Import ``mmvis_msts.<name>`` and check that it has ``funcs``.

    Args:
        name (str): Module name inside the package, e.g. ``'_ext'``.
        funcs (Sequence[str]): Symbols the caller needs.

    Returns:
        ModuleType | None: The extension, or None when it was not built
        (e.g. installed with ``MMVIS_WITH_OPS=0``).

    Raises:
        ImportError: The extension exists but lacks one of ``funcs`` (a
            stale build), or it exists and fails to load (e.g. built
            against another torch).
    """
    module_name = f'{PACKAGE}.{name}'
    try:
        ext = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # only the extension itself may be absent, not something it needs
        if error.name != module_name:
            raise
        return None
    for func in funcs:
        if not hasattr(ext, func):
            raise ImportError(
                f'{module_name} ({ext.__file__}) has no function {func!r}: '
                'the build is stale, rebuild it with '
                '`pip install -e . --no-build-isolation`.')
    return ext
