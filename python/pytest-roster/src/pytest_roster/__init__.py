"""pytest fixtures for Roster: a server per test process, reset before each test.

The fixtures live in :mod:`pytest_roster.plugin`, which pytest loads through the
``pytest11`` entry point; :class:`RosterServer` and :class:`Roster` are importable for
type hints and for code that starts a server outside pytest.
"""

from pytest_roster.server import Roster, RosterError, RosterServer

__all__ = ["Roster", "RosterError", "RosterServer"]
