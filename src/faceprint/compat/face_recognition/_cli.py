"""What the two commands share: the folder listing and running one function per image, in order,
in this process or on faceprint's worker pool."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import click

from faceprint.pipeline import parallel_map

T = TypeVar("T")
R = TypeVar("R")

#: what 1.3.0 takes from a folder: a name with ".jpg", ".jpeg" or ".png" (any case) in its first line
#: (so "a.png.txt" too), in ``os.listdir`` order
_IMAGE_NAME = re.compile(r".*\.(jpg|jpeg|png)", re.IGNORECASE)

CPUS_HELP = "How many cores to use: worker processes, -1 for one per core; 1 (the default) works in this process."


def image_files_in_folder(folder: str) -> list[str]:
    """The images of ``folder`` as the original lists them (not sorted: the same order, the same lines)."""
    return [os.path.join(folder, name) for name in os.listdir(folder) if _IMAGE_NAME.match(name)]


def images_to_check(path: str) -> list[str]:
    """A folder's images, or the one file given."""
    return image_files_in_folder(path) if os.path.isdir(path) else [path]


def worker_count(cpus: int, items: int) -> int:
    """How many processes ``--cpus`` asks for, never more than there are images."""
    if cpus == -1:
        cpus = os.cpu_count() or 1
    elif cpus < 1:
        raise click.BadParameter(f"{cpus}: give -1 (every core) or a number of cores from 1", param_hint="'--cpus'")
    return max(1, min(cpus, items))


def map_in_order(make: Callable[[], Callable[[T], R]], items: Sequence[T], cpus: int) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` for every item, in input order, where ``fn = make()``: here for one core, else
    on faceprint's worker pool (each worker loads the models once; results come back to be printed here,
    so the lines keep the input order, and Ctrl-C ends the workers)."""
    workers = worker_count(cpus, len(items))
    results = map(make(), items) if workers == 1 else parallel_map(make, items, workers)
    # strict: after the last item the pool is asked once more, so that it shuts down cleanly
    yield from zip(items, results, strict=True)
