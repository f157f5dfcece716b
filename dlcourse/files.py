"""Replacing a file in one step, so that a kill or an error never leaves half of it.

Runs are killed on purpose (Ctrl-C, preempted cloud machines) and resumed;
a file that marks progress (``metrics.json``, a history, a cache) must then
hold either its old content or its new content, never a torn mix.
"""
import contextlib
import os
import pathlib
import secrets


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_options):
    """Open a new temporary file next to ``path`` for writing; when the block ends without
    an exception it replaces ``path`` (``os.replace``), otherwise it is removed and ``path``
    is left as it was.

    ``mode`` is ``"w"`` or ``"wb"``; ``open_options`` go to ``open`` (``encoding``,
    ``newline``).  The temporary lies in the same folder, so the replacement is one
    rename on the same file system.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "x": never write over another writer's temporary file.
        with open(temporary, mode.replace("w", "x"), **open_options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
