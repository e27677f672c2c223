"""A test process that dies without tearing down (SIGKILL): its server must stop too
(tests/packaging.rs checks that nothing answers on its port afterwards)."""

import os
import signal


def test_dies_without_teardown(roster_server):
    with open(os.environ["ROSTER_KILLED_URL"], "w", encoding="utf-8") as noted:
        noted.write(roster_server.url)
    os.kill(os.getpid(), signal.SIGKILL)
