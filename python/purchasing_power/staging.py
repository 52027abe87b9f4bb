"""Files written whole or not at all: staged under a hidden name in the folder of the
final one, then renamed over it (atomic on one file system). A writer killed midway
(SIGKILL, a lost machine) leaves what it staged; the next writer to the folder removes
it, under a lock on the folder that the writers of one folder share, so that the
staged files of a writer still running are never taken for leftovers. The system lets
go of the lock when its process ends, however it ends (``flock``; Linux and macOS).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def only_writer(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (waiting for another holder to let go)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def leftovers(folders: Iterable[Path], name: re.Pattern[str]) -> list[Path]:
    """What in ``folders`` has a staged name: one ``name`` matches whole."""
    return sorted(
        path for folder in folders for path in folder.iterdir() if name.fullmatch(path.name)
    )


def remove(paths: Iterable[Path]) -> None:
    """Remove staged files and folders (a folder whole, a link as a link)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                path.unlink()
