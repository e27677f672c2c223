"""The fixtures and options (loaded by pytest through the ``pytest11`` entry point)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from pytest_roster.server import Roster, RosterError, RosterServer, find_binary


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("roster", "Roster (a Cloudflare members API stand-in)")
    group.addoption("--roster-bin", help="the roster binary (else $ROSTER_BIN, roster-server's, PATH)")
    group.addoption("--roster-seed", help="a fixture file loaded beside the demo; reset goes back to it")
    group.addoption(
        "--roster-no-demo", action="store_true", default=None, help="start without the demo data"
    )
    group.addoption(
        "--roster-database-url",
        help="run on this PostgreSQL database instead of SQLite in memory; "
        "{worker} in it becomes the pytest-xdist worker's id",
    )
    group.addoption(
        "--roster-arg", action="append", default=None, help="an argument for roster serve (repeatable)"
    )
    parser.addini("roster_bin", "the roster binary")
    parser.addini("roster_seed", "a fixture file loaded beside the demo")
    parser.addini("roster_no_demo", "start without the demo data", type="bool", default=False)
    parser.addini("roster_database_url", "a PostgreSQL URL ({worker}: the xdist worker's id)")
    parser.addini("roster_args", "arguments for roster serve", type="args", default=[])


def _setting(config: pytest.Config, name: str):
    given = config.getoption(f"--{name.replace('_', '-')}")
    if given is not None:
        return given
    return config.getini(name) or None


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


@pytest.fixture(scope="session")
def roster_server(pytestconfig: pytest.Config) -> Iterator[RosterServer]:
    """``roster serve`` for this test process (each pytest-xdist worker has its own)."""
    seed = _setting(pytestconfig, "roster_seed")
    if seed and not os.path.isabs(seed) and not os.path.exists(seed):
        seed = os.path.join(str(pytestconfig.rootpath), seed)
    database_url = _setting(pytestconfig, "roster_database_url")
    if database_url:
        database_url = database_url.replace("{worker}", _worker_id())
    extra = pytestconfig.getoption("--roster-arg") or pytestconfig.getini("roster_args")
    try:
        server = RosterServer(
            find_binary(_setting(pytestconfig, "roster_bin")),
            demo=not _setting(pytestconfig, "roster_no_demo"),
            seed=seed,
            database_url=database_url,
            extra_args=extra,
        )
    except RosterError as e:
        pytest.fail(f"Roster did not start: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def roster(roster_server: RosterServer) -> Roster:
    """The server, reset to its seeded state before this test."""
    control = roster_server.control()
    control.reset()
    return control


@pytest.fixture
def cloudflare_client(roster: Roster):
    """The official ``cloudflare`` client, signed in as the demo user on Roster."""
    cloudflare = pytest.importorskip(
        "cloudflare", reason="cloudflare_client needs the official SDK: pip install cloudflare"
    )
    if not roster.api_key:
        pytest.skip("cloudflare_client signs in as the demo user: the server runs without the demo")
    client = cloudflare.Cloudflare(
        api_email=roster.email, api_key=roster.api_key, base_url=roster.base_url
    )
    yield client
    client.close()
