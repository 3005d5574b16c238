"""Folder trees the tests and the benches make: deep ones, made fast (no long path walked)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


def deep_tree(
    top: Path, depth: int, names: Iterable[str] = (), folders: Iterable[str] = ()
) -> Path:
    """``top`` (made if need be), with empty files ``names`` and empty folders ``folders``
    at the bottom of ``depth`` nested folders ``d/`` (made relative to each folder's
    descriptor: no long path walked). Returns ``top``."""
    top.mkdir(exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        for name in names:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        for name in folders:
            os.mkdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    return top
