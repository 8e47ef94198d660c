"""The C heap of long CPU runs: large blocks on their own mappings.

See docs/inference.md (section 4, "Measured").
"""
import ctypes
import sys

# mallopt's parameter numbers in glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's default trim threshold, which its dynamic threshold raises
DEFAULT_TRIM_THRESHOLD = 128 * 1024


def fix_mmap_threshold(nbytes: int = 1 << 20) -> bool:
    """Serve every C allocation of ``nbytes`` or more by its own mmap.

    glibc's threshold starts at 128 KiB but rises, up to 32 MiB, to the size
    of each large block freed. After the first frees, the large tensors of a
    long run come from the heap, whose free pieces are reused only by blocks
    that fit and seldom go back to the system: the peak resident size creeps
    up with the run's length. A block on its own mapping goes back when
    freed. Measured on the clip-wise R-50 run of a 360x640 video
    (docs/inference.md): peak 1.11x from 50 to 400 frames with the default,
    1.01x with the threshold fixed at 1 MiB. It is slower: every large
    block is then mapped, zeroed and unmapped each time (about 0.7x the
    frames/s of the tiny config).

    The effect is that of ``MALLOC_MMAP_THRESHOLD_=nbytes`` in the
    environment of a new process. Set later, it also needs the trim
    threshold back at its default (the rise raised it too) and the heap's
    free top returned now, since glibc maps a block only when the top
    cannot hold it.

    Args:
        nbytes (int): The threshold in bytes. Defaults to 1 MiB.

    Returns:
        bool: Whether it was set; False where the C library is not glibc.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, nbytes) == 1 and mallopt(
        M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD) == 1
    malloc_trim(ctypes.c_size_t(0))
    return ok
