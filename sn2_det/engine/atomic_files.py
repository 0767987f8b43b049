"""Local files written by mmengine appear whole or not at all (faults).

mmengine saves checkpoints (and ``dump``s results) through its local storage
backend, which opens the final path and writes into it: a process killed meanwhile
leaves a truncated ``epoch_N.pth`` that ``--resume`` would pick. Importing
``sn2_det`` registers :class:`AtomicLocalBackend` in its place for plain paths: the
bytes go to a hidden temporary file next to the target (``.NAME.PID.XXXXXXXX.tmp``),
are flushed to disk, and the file is renamed over the target with ``os.replace``,
which is atomic on POSIX and Windows. An interrupted write leaves the previous file
untouched and at worst a temporary file, which :func:`leftover_partial_writes` finds.
"""
import os
import os.path as osp
import re
import uuid
from pathlib import Path
from typing import List, Union

from mmengine.fileio import io as fileio_io
from mmengine.fileio.backends import LocalBackend, register_backend

_TEMP_NAME = re.compile(r'^\..+\.\d+\.[0-9a-f]{8}\.tmp$')


def atomic_write(filepath: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    A symlink is written through, as ``open(filepath, 'wb')`` would; missing parent
    directories are created; the new file gets the default permissions.
    """
    path = osp.realpath(filepath)
    directory, name = osp.split(path)
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'.{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points to it
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def leftover_partial_writes(directory: str) -> List[str]:
    """Temporary files of writes that were killed before their rename."""
    return sorted(osp.join(directory, name) for name in os.listdir(directory)
                  if _TEMP_NAME.match(name))


@register_backend('local', prefixes='', force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` and ``put_text`` are atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


# Local backends mmengine made before this module was imported are cached by their
# arguments; drop them, so that every later local write is atomic.
for _key, _backend in list(fileio_io.backend_instances.items()):
    if type(_backend) is LocalBackend:
        del fileio_io.backend_instances[_key]
