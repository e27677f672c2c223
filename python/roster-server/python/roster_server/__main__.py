"""``python -m roster_server ...`` runs ``roster ...``."""

import os
import subprocess
import sys

from roster_server import find_roster_bin


def main() -> None:
    binary = find_roster_bin()
    if sys.platform == "win32":
        sys.exit(subprocess.call([binary, *sys.argv[1:]]))
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
