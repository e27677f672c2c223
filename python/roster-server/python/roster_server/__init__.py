"""The ``roster`` binary this distribution installed, for code that starts it itself."""

from __future__ import annotations

import os
import sys
import sysconfig

__all__ = ["find_roster_bin"]


def find_roster_bin() -> str:
    """The path of the ``roster`` executable installed with this package.

    Looks where pip puts scripts for this interpreter's environment (a virtual environment,
    the user site with ``--user``, or the system), as the binary is a script of the wheel.
    """
    name = "roster.exe" if sys.platform == "win32" else "roster"
    schemes = [sysconfig.get_default_scheme()]
    user_scheme = {"nt": "nt_user", "posix": "posix_user"}.get(os.name)
    if user_scheme:
        schemes.append(user_scheme)
    candidates = [os.path.join(sysconfig.get_path("scripts", scheme), name) for scheme in schemes]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "the roster binary is not where roster-server installs it; looked in "
        + ", ".join(candidates)
    )
