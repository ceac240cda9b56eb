"""Files the project writes for others to read, and sentences for files it cannot read.

:func:`write_atomic` writes a whole file or nothing: to a temporary file in the same
folder, flushed to disk, then renamed over the old one, so a reader sees the old file or
the new one. ``mkstemp`` creates that temporary file private (mode 0600); before the rename
it gets the mode a plain ``open()`` would have given (``0o666 & ~umask``, 0644 under the
usual umask 022), so a service running as another user can read what a build wrote.

:func:`unreadable` turns the ``OSError`` of a failed read into one sentence: the file, the
reason, and what to do.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``).

    Elsewhere it is read the only portable way, by setting it and setting it back, under a
    lock so that two threads of this module cannot interleave; another thread creating a
    file at that instant would get mode 022's permissions, never looser ones.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` all at once (see the module docstring); returns the path.

    The file gets mode ``0o666 & ~umask``; on any failure the old file is left as it was and
    no temporary file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode(encoding) if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def unreadable(path: str | os.PathLike[str], exc: OSError) -> str:
    """Why ``path`` could not be read (``exc`` from the attempt) and what to do, as one sentence."""
    path = Path(path)
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return f"{path} is a folder, not a file; give the path of the file itself"
    if isinstance(exc, PermissionError):
        reader = _user(os.geteuid()) if hasattr(os, "geteuid") else "this user"
        try:
            info = path.stat()
        except OSError:
            return (f"{path} cannot be read: permission denied on a folder above it for {reader}; "
                    f"let {reader} into that folder (chmod a+x on it) or move the file")
        return (f"{path} cannot be read: permission denied (the file belongs to {_user(info.st_uid)} with mode "
                f"{stat.S_IMODE(info.st_mode):04o}, this process runs as {reader}); make it readable with "
                f"`chmod a+r {path}` or run as its owner")
    return f"{path} cannot be read: {exc.strerror or exc}"
