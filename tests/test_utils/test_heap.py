"""fix_mmap_threshold, checked against glibc's documented malloc behaviour."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAP_PY = Path(__file__).resolve().parents[2] / 'mmvis_msts/utils/heap.py'

# In a new interpreter, as the setting is process-wide. A freed 8 MiB block
# raises glibc's dynamic mmap threshold to 8 MiB, so a 2 MiB block then
# comes from the heap; with the threshold fixed at 1 MiB it gets its own
# mapping, which mallinfo2's hblkhd (bytes in mmapped blocks) counts.
SCRIPT = textwrap.dedent("""
    import ctypes
    import runpy
    import sys

    # the module alone: the package would import torch and the rest
    fix_mmap_threshold = runpy.run_path(sys.argv[1])['fix_mmap_threshold']

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
            'fsmblks', 'uordblks', 'fordblks', 'keepcost')]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2

    def mmapped_growth(nbytes):
        before = libc.mallinfo2().hblkhd
        block = libc.malloc(nbytes)
        grown = libc.mallinfo2().hblkhd - before
        libc.free(block)
        return grown

    libc.free(libc.malloc(8 << 20))
    print(mmapped_growth(2 << 20), fix_mmap_threshold(1 << 20),
          mmapped_growth(2 << 20))
""")


@pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='glibc malloc only')
def test_blocks_above_the_threshold_get_their_own_mapping():
    out = subprocess.run([sys.executable, '-c', SCRIPT,
                          str(HEAP_PY)],
                         capture_output=True,
                         text=True,
                         check=True).stdout.split()
    before, was_set, after = int(out[0]), out[1], int(out[2])
    assert before == 0
    assert was_set == 'True'
    assert after >= 2 << 20
