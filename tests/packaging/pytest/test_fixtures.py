"""A suite written only against pytest-roster's fixtures, as a user of the wheel writes one:
no conftest, no server started by hand (tests/packaging.rs runs it from a fresh virtual
environment with no Rust toolchain on PATH, once alone and once under pytest-xdist)."""

import os

import cloudflare
import pytest


@pytest.fixture(autouse=True)
def note_which_server(roster_server):
    """Where the harness asks, each test notes its worker and server: one server per worker."""
    where = os.environ.get("ROSTER_SERVERS_SEEN")
    if where:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(where, "a", encoding="utf-8") as seen:
            seen.write(f"{worker} {roster_server.url}\n")


def role_id(client, account_id, name):
    return next(r.id for r in client.accounts.roles.list(account_id=account_id) if r.name == name)


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_from_the_seeded_state(cloudflare_client, roster, attempt):
    emails = [m.email for m in cloudflare_client.accounts.members.list(account_id=roster.account_id)]
    assert "left.behind@example.com" not in emails
    cloudflare_client.accounts.members.create(
        account_id=roster.account_id,
        email="left.behind@example.com",
        roles=[role_id(cloudflare_client, roster.account_id, "Administrator")],
    )
    assert roster.requests() != []


def test_a_fault_is_retried_by_the_sdk_and_journaled(cloudflare_client, roster):
    path = f"/client/v4/accounts/{roster.account_id}/members"
    fault = roster.add_fault(method="GET", path=path, status=503, times=1)
    assert fault
    first_page = cloudflare_client.accounts.members.list(account_id=roster.account_id)
    assert first_page.result
    statuses = [entry["status"] for entry in roster.requests(method="GET", path=path)]
    assert statuses == [503, 200]


def test_a_fault_may_answer_a_stub(cloudflare_client, roster):
    roster.add_fault(
        method="GET",
        path="/client/v4/user",
        body={"success": False, "errors": [{"code": 9999, "message": "stubbed"}], "messages": [], "result": None},
        status=418,
        times=1,
    )
    with pytest.raises(cloudflare.APIStatusError) as refused:
        cloudflare_client.user.get()
    assert refused.value.status_code == 418
    assert cloudflare_client.user.get().email == roster.email
    roster.clear_faults()


def test_the_clock_expires_an_invitation(cloudflare_client, roster):
    invitee = roster.create_user("invitee@example.com", first_name="In", last_name="Vitee")
    cloudflare_client.accounts.members.create(
        account_id=roster.account_id,
        email=invitee["email"],
        roles=[role_id(cloudflare_client, roster.account_id, "Administrator")],
    )
    as_invitee = cloudflare.Cloudflare(
        api_email=invitee["email"], api_key=invitee["api_key"], base_url=roster.base_url, max_retries=0
    )
    (pending,) = as_invitee.memberships.list(status="pending")
    roster.advance_clock(8 * 86400)
    with pytest.raises(cloudflare.ConflictError) as expired:
        as_invitee.memberships.update(pending.id, status="accepted")
    assert expired.value.status_code == 409
    assert as_invitee.memberships.update(pending.id, status="rejected") is not None
    as_invitee.close()


def test_a_snapshot_is_restored(cloudflare_client, roster):
    roster.snapshot("before")
    admin = role_id(cloudflare_client, roster.account_id, "Administrator")
    cloudflare_client.accounts.members.create(
        account_id=roster.account_id, email="transient@example.com", roles=[admin]
    )
    roster.restore("before")
    emails = [m.email for m in cloudflare_client.accounts.members.list(account_id=roster.account_id)]
    assert "transient@example.com" not in emails


def test_a_user_made_with_two_factor_joins_the_demo_account(cloudflare_client, roster):
    joiner = roster.create_user("joiner@example.com", two_factor_authentication_enabled=True)
    cloudflare_client.accounts.members.create(
        account_id=roster.account_id,
        email=joiner["email"],
        roles=[role_id(cloudflare_client, roster.account_id, "Administrator Read Only")],
    )
    as_joiner = cloudflare.Cloudflare(
        api_email=joiner["email"], api_key=joiner["api_key"], base_url=roster.base_url
    )
    (pending,) = as_joiner.memberships.list(status="pending")
    assert as_joiner.memberships.update(pending.id, status="accepted").status == "accepted"
    as_joiner.close()


def test_users_made_in_a_test_are_gone_after_the_reset(roster):
    roster.create_user("made.here@example.com")
    roster.reset()
    roster.create_user("made.here@example.com")
