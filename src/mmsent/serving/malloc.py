"""glibc malloc settings for the long-lived, many-threaded front ends (`mmsent serve`, `mmsent ui`)."""

import ctypes
import ctypes.util


def bound_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) before the server's threads start. Each of the
    many request threads otherwise gets an arena of its own, and the resident memory of a server
    under 20 clients crept up ~55 MB every 400 requests; capped, it levels off. False where the
    C library is not glibc (nothing to do)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, arenas))  # -8: M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        return False
