"""Atomic replacement of local files: temporary file, fsync, rename.

A process killed while it writes a file in place leaves a truncated file
under the final name. Writing to ``<path>.tmp`` in the same folder, syncing
it to disk, renaming it over ``<path>`` and syncing the folder leaves either
the old or the new complete file under ``<path>``, whatever moment the
process or the machine dies at (POSIX ``rename`` replaces atomically within
one file system).
"""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator

# Suffix of the temporary file, next to the final one. A kill during a
# write leaves it behind; the next write of the same path replaces it.
TMP_SUFFIX = '.tmp'


def _fsync_path(path: str) -> None:
    """Flush a file's or folder's data and metadata to disk.

    Args:
        path (str): A file or a folder.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Give a temporary path to write; on success it replaces ``path``.

    Args:
        path (str): The final local path.

    Yields:
        str: ``path + TMP_SUFFIX``, to be written within the block.

    Raises:
        FileNotFoundError: If the block did not create the temporary file.

    Examples:
        >>> with atomic_path('work_dir/iter_4.pth') as tmp:
        ...     torch.save(checkpoint, tmp)
    """
    tmp = path + TMP_SUFFIX
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise
    _fsync_path(osp.dirname(osp.abspath(path)))


def write_text_atomic(path: str, text: str) -> None:
    """Replace the local text file ``path`` atomically.

    Args:
        path (str): The final path.
        text (str): Its new content (UTF-8).
    """
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
