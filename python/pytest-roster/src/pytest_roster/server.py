"""A ``roster serve`` process and its control plane, with nothing but the standard library.

The server listens on port 0 and says the port it got in its ``--ready-file``, so no two
test processes race for a port and no log line is parsed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Optional

__all__ = ["Roster", "RosterError", "RosterServer", "find_binary"]

START_TIMEOUT_SECONDS = 60.0

# The server is on loopback: never through a proxy the environment names (it would see the
# control plane's answers, new users' keys among them).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RosterError(Exception):
    """The server did not start, or its control plane refused a request."""


def find_binary(explicit: Optional[str] = None) -> str:
    """The ``roster`` to run: ``explicit``, else ``$ROSTER_BIN``, else the one the
    ``roster-server`` distribution installed, else ``roster`` on ``PATH``."""
    for candidate in (explicit, os.environ.get("ROSTER_BIN")):
        if candidate:
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                raise RosterError(f"{candidate} is not an executable file")
            return candidate
    try:
        from roster_server import find_roster_bin
    except ImportError:
        pass
    else:
        try:
            return find_roster_bin()
        except FileNotFoundError:
            pass
    found = shutil.which("roster")
    if found:
        return found
    raise RosterError(
        "no roster binary: pip install roster-server, or give --roster-bin / ROSTER_BIN"
    )


class RosterServer:
    """One ``roster serve`` with the emulator's control plane, on a free loopback port."""

    def __init__(
        self,
        binary: str,
        *,
        demo: bool = True,
        seed: Optional[str] = None,
        database_url: Optional[str] = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="roster-")
        ready = os.path.join(self._dir.name, "ready.json")
        self.log_path = os.path.join(self._dir.name, "roster.log")
        # The server holds a pipe from this process as its standard input and stops when it
        # closes: a test process that dies (SIGKILL, a crashed xdist worker) leaves no server.
        command = [
            binary,
            "serve",
            "--emulator",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            ready,
            "--stop-when-stdin-closes",
        ]
        if not database_url:
            command.append("--ephemeral")
        if demo:
            command.append("--demo")
        if seed:
            command += ["--seed", os.path.abspath(seed)]
        # A suite's requests are not rationed; a reset refills the rest.
        command += ["--rate-limit", "0", *extra_args]
        env = dict(os.environ)
        for name in ("ROSTER_DATABASE", "DATABASE_URL", "ROSTER_LISTEN"):
            env.pop(name, None)
        if database_url:
            # In the environment, not the command line, which any local user can read.
            env["DATABASE_URL"] = database_url
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir.name,
                env=env,
            )
        try:
            said = self._wait_for(ready)
        except BaseException:
            self.stop()
            raise
        self.url: str = said["url"]
        self.base_url: str = said["api"]
        demo_user = said.get("demo") or {}
        self.email: Optional[str] = demo_user.get("email")
        self.api_key: Optional[str] = demo_user.get("api_key")
        self.account_id: Optional[str] = demo_user.get("account_id")

    def _wait_for(self, ready: str) -> dict:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        said = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RosterError(
                    f"roster exited with status {self._process.returncode} before it was "
                    f"ready:\n{self.log_tail()}"
                )
            if said is None and os.path.exists(ready):
                with open(ready, encoding="utf-8") as f:
                    said = json.load(f)
            if said is not None:
                try:
                    with _OPENER.open(said["url"] + "/_roster/health", timeout=5):
                        return said
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.02)
        raise RosterError(
            f"roster was not ready within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server wrote (its log)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 10 s."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdin:
            self._process.stdin.close()
        self._dir.cleanup()

    def control(self) -> "Roster":
        return Roster(self)


class Roster:
    """The control plane of a running server (``/_roster/``): what a test changes and reads."""

    def __init__(self, server: RosterServer) -> None:
        self.server = server
        self.url = server.url
        self.base_url = server.base_url
        self.email = server.email
        self.api_key = server.api_key
        self.account_id = server.account_id

    def _call(self, method: str, path: str, body: Any = None, query: Optional[dict] = None) -> Any:
        url = self.url + "/_roster" + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {}
        if method != "GET":
            # The control plane takes writes only as JSON (a page cannot forge one).
            headers["Content-Type"] = "application/json"
            data = b"" if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=60) as answer:
                return json.load(answer).get("result")
        except urllib.error.HTTPError as refused:
            text = refused.read().decode("utf-8", "replace")
            try:
                errors = json.loads(text).get("errors") or text
            except ValueError:
                errors = text
            raise RosterError(f"{method} {path}: {refused.code} {errors}") from None

    def reset(self) -> dict:
        """Back to the seeded state: data, clock, faults, journal, allowances."""
        return self._call("POST", "/reset")

    def snapshot(self, name: str) -> dict:
        return self._call("POST", "/snapshots", {"name": name})

    def restore(self, name: str) -> dict:
        return self._call("POST", f"/snapshots/{urllib.parse.quote(name, safe='')}/restore")

    def advance_clock(self, seconds: int) -> dict:
        return self._call("POST", "/clock", {"advance_seconds": seconds})

    def set_clock(self, iso: str) -> dict:
        return self._call("POST", "/clock", {"now": iso})

    def add_fault(self, **fields: Any) -> str:
        """A fault (``method``, ``path``, ``caller``, ``status``, ``code``, ``message``,
        ``retry_after``, ``delay_ms``, ``times``, ``probability``, ``body``); its id."""
        return self._call("POST", "/faults", fields)["id"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self, **filters: Any) -> list:
        """The journal's entries, oldest first; filters ``method``, ``path`` (a glob),
        ``status``, ``limit``."""
        return self._call("GET", "/requests", query={k: v for k, v in filters.items() if v is not None})

    def create_user(self, email: str, **fields: Any) -> dict:
        """A new user with a global API key (``first_name``, ``last_name``, ``api_key``,
        ``two_factor_authentication_enabled``, which the demo account requires of those who
        accept its invitations): ``{"id", "email", "api_key", ...}``. Gone at the next reset."""
        return self._call("POST", "/users", {"email": email, **fields})
