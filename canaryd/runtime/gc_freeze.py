"""What start built, moved out of the cyclic garbage collector's walks, once.

A full collection walks every tracked object while the event loop stands still, and most of a running
canaryd's are made at start and live as long as the process: modules, classes, functions, the informers,
the HTTP server, the first pages of the cache. ``gc.freeze()`` after a collection at the end of start moves
them to a generation no collection visits again (CPython's own advice for long-lived processes).

Once only, on purpose: an object frozen here that later dies inside a reference cycle is never collected,
so freezing again and again (say after every full collection) would leak whatever was in flight at each
freeze; a single freeze bounds that to what existed at start. Objects made later are collected as before."""

from __future__ import annotations

import gc
import logging


def freeze_start(logger: logging.Logger) -> int:
    """Collect, then freeze everything left; returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(f"{frozen} objects built at start moved out of garbage collection (gc.freeze)")
    return frozen
