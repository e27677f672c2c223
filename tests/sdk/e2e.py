"""End-to-end test: Cloudflare's official Python SDK (cloudflare==5.9.0) against Roster.

Run against a fresh `roster serve --demo` (it changes the demo data as it goes):

    ROSTER_BASE_URL=http://127.0.0.1:8080/client/v4 python tests/sdk/e2e.py

Every call goes through the SDK; results are checked as the SDK's typed models (and
re-validated strictly with pydantic, with every warning an error), errors as the SDK's
`cloudflare.APIStatusError` subclasses. The last line printed is `N passed, M failed`;
the exit status is non-zero on any failure. `cargo test --test sdk` runs this script.
"""

import os
import sys
import time
import traceback
import warnings
from datetime import datetime

# Any warning (notably pydantic's "serialized value may not be as expected") fails the check
# that caused it. Set before the SDK is imported so import-time warnings count too.
warnings.simplefilter("error")

# The SDK reads credentials and the base URL from CLOUDFLARE_* variables when an argument is
# missing; none of them may leak into this run.
for _name in [n for n in os.environ if n.startswith("CLOUDFLARE_")]:
    del os.environ[_name]

import cloudflare  # noqa: E402
from cloudflare import (  # noqa: E402
    APIStatusError,
    BadRequestError,
    Cloudflare,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from cloudflare.pagination import SyncSinglePage, SyncV4PagePaginationArray  # noqa: E402
from cloudflare.types.accounts import Account, AccountDeleteResponse, MemberDeleteResponse  # noqa: E402
from cloudflare.types.accounts import (  # noqa: E402
    TokenCreateResponse as AccountTokenCreateResponse,
    TokenDeleteResponse as AccountTokenDeleteResponse,
    TokenVerifyResponse as AccountTokenVerifyResponse,
)
from cloudflare.types.accounts.tokens import (  # noqa: E402
    PermissionGroupListResponse as AccountTokenPermissionGroup,
)
from cloudflare.types.iam import (  # noqa: E402
    PermissionGroupGetResponse,
    PermissionGroupListResponse,
    ResourceGroupCreateResponse,
    ResourceGroupDeleteResponse,
    ResourceGroupGetResponse,
    ResourceGroupListResponse,
    ResourceGroupUpdateResponse,
)
from cloudflare.types.iam import (  # noqa: E402
    UserGroupCreateResponse,
    UserGroupDeleteResponse,
    UserGroupGetResponse,
    UserGroupListResponse,
    UserGroupUpdateResponse,
)
from cloudflare.types.iam.user_groups import (  # noqa: E402
    MemberCreateResponse as GroupMemberCreateResponse,
    MemberDeleteResponse as GroupMemberDeleteResponse,
    MemberGetResponse as GroupMemberGetResponse,
    MemberListResponse as GroupMemberListResponse,
)
from cloudflare.types.memberships import (  # noqa: E402
    Membership,
    MembershipDeleteResponse,
    MembershipGetResponse,
    MembershipUpdateResponse,
)
from cloudflare.types.shared import Member, PermissionGrant, Role  # noqa: E402
from cloudflare.types.shared import AuditLog, Token  # noqa: E402
from cloudflare.types.accounts.logs import AuditListResponse  # noqa: E402
from cloudflare.types.user import (  # noqa: E402
    Invite,
    TokenCreateResponse,
    TokenDeleteResponse,
    TokenVerifyResponse,
    UserEditResponse,
    UserGetResponse,
)
from cloudflare.types.user.tokens import PermissionGroupListResponse as TokenPermissionGroup  # noqa: E402

SDK_VERSION = "5.9.0"

# The demo data (`roster serve --demo`, see demo/demo.json and DESIGN.md).
DEMO_ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
ACME_ACCOUNT = "eb78d65290b24279ba6f44721b3ea3c4"
SANDBOX_ACCOUNT = "1f2e3d4c5b6a79880f1e2d3c4b5a6978"
JOHN = ("user@example.com", "144c9defac04969c7bfad8efaa8ea194")
JOHN_ID = "7c5dae5552338874e5053f2534d2767a"
JOHN_DEMO_MEMBERSHIP = "4536bcfad5faccb111b47003c79917fa"
JOHN_ACME_INVITATION = "4f5f0c14a2a41d5063dd301b2f829f04"
JOHN_SANDBOX_MEMBERSHIP = "d4c3b2a1f0e9d8c7b6a5948372615040"
JANE = ("jane@example.com", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c")
JANE_DEMO_INVITATION = "b1f4c3e2d5a6978877665544332211ff"
JANE_ACME_MEMBERSHIP = "a5c2e0f1d3b4a5968778695a4b3c2d1e"
BOB = ("bob@example.com", "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
BOB_SANDBOX_INVITATION = "d4c3b2a1f0e9d8c7b6a5948372615041"
ACCOUNT_ADMIN_ROLE = "3536bcfad5faccb999b47003c79917fb"
DEMO_RESOURCE_GROUP = "6d7f2f5f5b1d4a0e9081fdc98d432fd1"
ZONE_READ_GROUP = "c8fed203ed3043cba015a93ad1616f1f"
SETTINGS_READ_GROUP = "15b972a8f4cb43e78efbafb322f7dee5"
MAGIC_GROUP = "82e64a83756745bbbb1c9c2701bf816b"
DEMO_MEMBER_COUNT = 12
# The bulk data tests/sdk.rs seeds beside the demo.
BULK = ("bulk@example.com", "b" * 37)
BULK_ACCOUNT = "b0000000000000000000000000000000"
BULK_MEMBERSHIPS = 251
BULK_MEMBERS = 300
PERMISSION_KEYS = [
    "analytics", "billing", "cache_purge", "dns", "dns_records", "lb",
    "logs", "organization", "ssl", "waf", "zone_settings", "zones",
]
NEW_ACCOUNTS = ["SDK Pagination %d" % i for i in range(1, 5)]


# --- a tiny runner ---------------------------------------------------------------------

CHECKS = []
STATE = {}


def check(fn):
    CHECKS.append(fn)
    return fn


class Failure(Exception):
    pass


def ensure(condition, message, *details):
    if not condition:
        raise Failure(message + ("" if not details else ": " + ", ".join(repr(d) for d in details)))


def equal(actual, expected, what):
    ensure(actual == expected, "%s: expected %r, got %r" % (what, expected, actual))


def typed(obj, cls):
    """`obj` is an instance of the SDK model `cls` that serializes without warnings and
    survives pydantic's strict validation (catches wrong literals, unparsed datetimes, ...)."""
    ensure(isinstance(obj, cls), "expected a %s, got %s" % (cls.__name__, type(obj).__name__))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_dict = obj.to_dict()
        obj.to_json()
        try:
            cls.model_validate(as_dict)
        except Exception as e:  # pydantic.ValidationError
            raise Failure("%s does not validate as the SDK's type: %s" % (cls.__name__, e))
    return obj


def raises(exc_type, status, call, /, *args, **kwargs):
    """The call raises the SDK's `exc_type` (an APIStatusError) with HTTP `status` and a
    Cloudflare error envelope."""
    try:
        result = call(*args, **kwargs)
    except APIStatusError as e:
        ensure(
            isinstance(e, exc_type),
            "expected %s, got %s (%s)" % (exc_type.__name__, type(e).__name__, e),
        )
        equal(e.status_code, status, "HTTP status")
        body = e.body
        ensure(isinstance(body, dict), "error body is the v4 envelope", body)
        equal(body.get("success"), False, "error envelope success")
        ensure(body.get("errors"), "error envelope lists errors", body)
        first = body["errors"][0]
        ensure(isinstance(first.get("code"), int) and first.get("message"), "error has code+message", first)
        if status == 409:
            # Otherwise the SDK retries the request twice, as for a lock timeout.
            equal(e.response.headers.get("x-should-retry"), "false", "x-should-retry on a 409")
        return e
    raise Failure("expected %s (%d), but the call returned %r" % (exc_type.__name__, status, result))


def client(creds, **options):
    email, key = creds
    return Cloudflare(api_email=email, api_key=key, base_url=BASE_URL, **options)


def all_pages(page):
    """Every item of an auto-paginated list, plus how many pages the SDK fetched."""
    pages = list(page.iter_pages())
    items = [item for p in pages for item in p.result]
    via_iter = list(page)  # the SDK's own auto-pagination
    equal([getattr(i, "id", None) for i in via_iter], [getattr(i, "id", None) for i in items], "iter(page) items")
    return items, len(pages)


def deprecated_ok(call, *args, **kwargs):
    """`accounts.roles.*` are deprecated in the SDK (a DeprecationWarning pointing to
    iam.permission_groups); that warning, and only that one, is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cloudflare\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*iam/permission_groups")
        return call(*args, **kwargs)


def role_id(name):
    return STATE["roles"][name]


# --- user ------------------------------------------------------------------------------

@check
def sdk_version():
    equal(cloudflare.__version__, SDK_VERSION, "cloudflare.__version__")


@check
def user_get():
    me = typed(JOHN_C.user.get(), UserGetResponse)
    equal(me.id, JOHN_ID, "user.id")
    equal(me.email, "user@example.com", "user.email")
    equal((me.first_name, me.last_name), ("John", "Appleseed"), "user name")
    equal(me.two_factor_authentication_enabled, True, "user 2FA")
    equal(me.suspended, False, "user.suspended")


@check
def user_edit():
    edited = typed(JOHN_C.user.edit(first_name="Johnny", telephone="+1 555 0100", zipcode="94107"), UserEditResponse)
    equal((edited.first_name, edited.last_name), ("Johnny", "Appleseed"), "edited name")
    equal(edited.telephone, "+1 555 0100", "edited telephone")
    equal(typed(JOHN_C.user.get(), UserGetResponse).first_name, "Johnny", "name after edit")
    cleared = typed(JOHN_C.user.edit(first_name="John", telephone=None, zipcode=None), UserEditResponse)
    equal((cleared.first_name, cleared.telephone, cleared.zipcode), ("John", None, None), "restored/cleared")


@check
def wrong_key_is_permission_denied():
    bad = Cloudflare(api_email="user@example.com", api_key="0" * 37, base_url=BASE_URL, max_retries=0)
    e = raises(PermissionDeniedError, 403, bad.user.get)
    equal(e.body["errors"][0]["code"], 9103, "error code for an unknown key")


# --- accounts ----------------------------------------------------------------------------

@check
def accounts_list_and_get():
    page = JOHN_C.accounts.list()
    ensure(isinstance(page, SyncV4PagePaginationArray), "accounts.list returns a V4 page", type(page))
    accounts = {a.id: typed(a, Account) for a in page}
    # Accepted memberships only: the Acme Corp invitation is still pending.
    equal(sorted(accounts), sorted([DEMO_ACCOUNT, SANDBOX_ACCOUNT]), "account ids")
    named = [a.id for a in JOHN_C.accounts.list(name="Sandbox")]
    equal(named, [SANDBOX_ACCOUNT], "accounts.list(name=Sandbox)")
    demo = typed(JOHN_C.accounts.get(account_id=DEMO_ACCOUNT), Account)
    equal((demo.id, demo.name, demo.type), (DEMO_ACCOUNT, "Demo Account", "standard"), "demo account")
    ensure(isinstance(demo.created_on, datetime), "created_on parses as a datetime", demo.created_on)
    equal(demo.created_on.year, 2014, "created_on year")
    equal(demo.settings.enforce_twofactor, True, "settings.enforce_twofactor")
    equal(demo.managed_by.parent_org_name, "Demo Parent Organization", "managed_by.parent_org_name")
    raises(NotFoundError, 404, JOHN_C.accounts.get, account_id="0" * 32)


@check
def accounts_create():
    created = {}
    for name in NEW_ACCOUNTS:
        account = typed(JOHN_C.accounts.create(name=name, type="standard"), Account)
        equal((account.name, account.type), (name, "standard"), "created account")
        ensure(len(account.id) == 32, "created account id is 32 hex", account.id)
        created[name] = account.id
    STATE["new_accounts"] = created
    listed = {a.name for a in JOHN_C.accounts.list(per_page=5)}
    ensure(set(NEW_ACCOUNTS) <= listed, "the new accounts are listed", listed)


@check
def user_invites():
    invites = [typed(i, Invite) for i in JANE_C.user.invites.list()]
    ensure(isinstance(JANE_C.user.invites.list(), SyncSinglePage), "invites are a single page")
    demo = [i for i in invites if i.organization_id == DEMO_ACCOUNT]
    equal([i.id for i in demo], [JANE_DEMO_INVITATION], "jane's demo invitation is her invite")
    shown = typed(JANE_C.user.invites.get(JANE_DEMO_INVITATION), Invite)
    equal((shown.status, shown.organization_name), ("pending", "Demo Account"), "the invite")
    ensure(shown.expires_on > shown.invited_on, "it expires after it was made", shown.expires_on, shown.invited_on)
    raises(NotFoundError, 404, JOHN_C.user.invites.get, JANE_DEMO_INVITATION)
    raises(BadRequestError, 400, JANE_C.user.invites.edit, JANE_DEMO_INVITATION, status="maybe")


# --- memberships (the user's view) -------------------------------------------------------------

@check
def memberships_auto_pagination():
    page = JOHN_C.memberships.list(per_page=5)
    ensure(isinstance(page, SyncV4PagePaginationArray), "memberships.list returns a V4 page", type(page))
    equal(page.result_info.per_page, 5, "result_info.per_page")
    items, pages = all_pages(page)
    for m in items:
        typed(m, Membership)
    ids = [m.id for m in items]
    equal(len(ids), len(set(ids)), "no membership repeats across pages")
    # Demo Account, Acme Corp (pending), Sandbox and the four accounts created above.
    equal(len(ids), 7, "membership count")
    ensure(pages >= 2, "more than one page was fetched", pages)
    equal(ids, sorted(ids), "default order is by id")
    names = sorted(m.account.name for m in items)
    equal(names, sorted(["Acme Corp", "Demo Account", "Sandbox"] + NEW_ACCOUNTS), "account names")


@check
def memberships_filters():
    pending = [typed(m, Membership) for m in JOHN_C.memberships.list(status="pending")]
    equal([m.id for m in pending], [JOHN_ACME_INVITATION], "status=pending")
    equal(pending[0].status, "pending", "pending status")
    equal(pending[0].roles, ["Administrator"], "pending roles (names)")
    accepted = list(JOHN_C.memberships.list(status="accepted", per_page=5))
    equal(len(accepted), 6, "status=accepted count")
    ensure(all(m.status == "accepted" for m in accepted), "status=accepted only")
    desc = [m.account.name for m in JOHN_C.memberships.list(order="account.name", direction="desc", per_page=5)]
    equal(len(desc), 7, "order=account.name count")
    # Names compare case-insensitively ("Sandbox" before "SDK ...").
    equal(desc, sorted(desc, key=str.lower, reverse=True), "order=account.name direction=desc")
    asc = [m.account.name for m in JOHN_C.memberships.list(order="account.name", direction="asc", per_page=5)]
    equal(asc, list(reversed(desc)), "direction=asc is the reverse")
    by_status = [m.status for m in JOHN_C.memberships.list(order="status", direction="desc", per_page=50)]
    equal(by_status, sorted(by_status, reverse=True), "order=status direction=desc")
    demo = list(JOHN_C.memberships.list(account={"name": "Demo Account"}))
    equal([m.id for m in demo], [JOHN_DEMO_MEMBERSHIP], "account.name filter")
    sandbox = list(JOHN_C.memberships.list(name="Sandbox"))
    equal([m.id for m in sandbox], [JOHN_SANDBOX_MEMBERSHIP], "name filter")
    both = list(JOHN_C.memberships.list(account={"name": "Demo Account"}, status="pending"))
    equal(both, [], "filters combine with AND")
    e = raises(BadRequestError, 400, JOHN_C.memberships.list, extra_query={"order": "bogus"})
    ensure("order" in e.body["errors"][0]["message"], "the 400 names the parameter", e.body)


@check
def memberships_get():
    m = typed(JOHN_C.memberships.get(JOHN_DEMO_MEMBERSHIP), MembershipGetResponse)
    equal((m.id, m.status, m.roles), (JOHN_DEMO_MEMBERSHIP, "accepted", ["Account Administrator"]), "membership")
    typed(m.account, Account)
    equal((m.account.id, m.account.name), (DEMO_ACCOUNT, "Demo Account"), "embedded account")
    ensure(isinstance(m.permissions.organization, PermissionGrant), "permissions are typed grants")
    for key in PERMISSION_KEYS:
        grant = getattr(m.permissions, key)
        equal((grant.read, grant.write), (True, True), "permissions.%s" % key)
    equal(m.policies, [], "a role-based membership has no policies")
    # Another user's membership answers exactly like a missing one.
    raises(NotFoundError, 404, JOHN_C.memberships.get, JANE_ACME_MEMBERSHIP)
    raises(NotFoundError, 404, JOHN_C.memberships.get, "f" * 32)


@check
def memberships_reject_then_accept_fails():
    rejected = typed(JOHN_C.memberships.update(JOHN_ACME_INVITATION, status="rejected"), MembershipUpdateResponse)
    equal((rejected.id, rejected.status), (JOHN_ACME_INVITATION, "rejected"), "rejected invitation")
    equal(typed(JOHN_C.memberships.get(JOHN_ACME_INVITATION), MembershipGetResponse).status, "rejected", "stored")
    # Only a pending invitation can change.
    raises(ConflictError, 409, JOHN_C.memberships.update, JOHN_ACME_INVITATION, status="accepted")
    # Someone else's invitation is invisible, also for an update.
    raises(NotFoundError, 404, JOHN_C.memberships.update, JANE_DEMO_INVITATION, status="accepted")


@check
def memberships_delete():
    gone = typed(JOHN_C.memberships.delete(JOHN_ACME_INVITATION), MembershipDeleteResponse)
    equal(gone.id, JOHN_ACME_INVITATION, "deleted membership id")
    raises(NotFoundError, 404, JOHN_C.memberships.get, JOHN_ACME_INVITATION)
    raises(NotFoundError, 404, JOHN_C.memberships.delete, JOHN_ACME_INVITATION)
    raises(NotFoundError, 404, JOHN_C.memberships.delete, JANE_ACME_MEMBERSHIP)
    equal(len(list(JOHN_C.memberships.list(per_page=5))), 6, "memberships left")


# --- roles, permission groups, resource groups ---------------------------------------------

@check
def roles_list_and_get():
    page = deprecated_ok(JOHN_C.accounts.roles.list, account_id=DEMO_ACCOUNT, per_page=5)
    roles, pages = deprecated_ok(all_pages, page)
    ensure(pages >= 2, "roles span several pages at per_page=5", pages)
    for r in roles:
        typed(r, Role)
    STATE["roles"] = {r.name: r.id for r in roles}
    equal(len(STATE["roles"]), len(roles), "role names are unique")
    for name in ["Super Administrator - All Privileges", "Administrator", "Administrator Read Only",
                 "Billing", "DNS", "Account Administrator"]:
        ensure(name in STATE["roles"], "role listed", name)
    equal(STATE["roles"]["Account Administrator"], ACCOUNT_ADMIN_ROLE, "demo role id")
    role = typed(deprecated_ok(JOHN_C.accounts.roles.get, ACCOUNT_ADMIN_ROLE, account_id=DEMO_ACCOUNT), Role)
    equal((role.name, role.description), ("Account Administrator", "Administrative access to the entire Account"), "role")
    equal(role.permissions.organization.write, True, "role.permissions.organization.write")
    ro = typed(deprecated_ok(JOHN_C.accounts.roles.get, role_id("Administrator Read Only"), account_id=DEMO_ACCOUNT), Role)
    for key in PERMISSION_KEYS:
        grant = getattr(ro.permissions, key)
        equal((grant.read, grant.write), (True, False), "read-only %s" % key)
    deprecated_ok(raises, NotFoundError, 404, JOHN_C.accounts.roles.get, "0" * 32, account_id=DEMO_ACCOUNT)


@check
def permission_groups():
    page = JOHN_C.iam.permission_groups.list(account_id=DEMO_ACCOUNT, per_page=5)
    groups, pages = all_pages(page)
    ensure(pages >= 2, "permission groups span several pages at per_page=5", pages)
    by_id = {g.id: typed(g, PermissionGroupListResponse) for g in groups}
    equal(by_id[ZONE_READ_GROUP].name, "Zone Read", "Zone Read group")
    names = {g.name for g in groups}
    for name in ["Account Settings Read", "Account Settings Write", "Memberships Read", "Memberships Write"]:
        ensure(name in names, "permission group listed", name)
    only = [g.id for g in JOHN_C.iam.permission_groups.list(account_id=DEMO_ACCOUNT, name="Zone Read")]
    equal(only, [ZONE_READ_GROUP], "name filter")
    only = [g.id for g in JOHN_C.iam.permission_groups.list(account_id=DEMO_ACCOUNT, id=MAGIC_GROUP)]
    equal(only, [MAGIC_GROUP], "id filter")
    magic = typed(JOHN_C.iam.permission_groups.get(MAGIC_GROUP, account_id=DEMO_ACCOUNT), PermissionGroupGetResponse)
    equal(magic.name, "Magic Network Monitoring", "permission group name")
    ensure(magic.meta is not None and magic.meta.label, "permission group meta.label", magic.meta)
    raises(NotFoundError, 404, JOHN_C.iam.permission_groups.get, "0" * 32, account_id=DEMO_ACCOUNT)


@check
def resource_groups():
    rg = JOHN_C.iam.resource_groups
    page = rg.list(account_id=DEMO_ACCOUNT)
    ensure(isinstance(page, SyncSinglePage), "resource_groups.list is a single page", type(page))
    listed = [typed(g, ResourceGroupListResponse) for g in page]
    ensure(DEMO_RESOURCE_GROUP in [g.id for g in listed], "demo resource group listed")
    demo = typed(rg.get(DEMO_RESOURCE_GROUP, account_id=DEMO_ACCOUNT), ResourceGroupGetResponse)
    equal(demo.scope.objects[0].key, "com.cloudflare.api.account.zone.23f8d65290b24279ba6f44721b3eaad5", "scope object")
    equal((demo.meta.key, demo.meta.value), ("key", "value"), "meta")

    scope_key = "com.cloudflare.api.account.%s" % DEMO_ACCOUNT
    zone = "com.cloudflare.api.account.zone.%s" % ("ab" * 16)
    created = typed(
        rg.create(account_id=DEMO_ACCOUNT, name="SDK zones", scope={"key": scope_key, "objects": [{"key": zone}]}),
        ResourceGroupCreateResponse,
    )
    equal((created.name, created.scope.key, [o.key for o in created.scope.objects]),
          ("SDK zones", scope_key, [zone]), "created resource group")
    STATE["resource_group"] = created.id
    e = raises(ConflictError, 409, rg.create, account_id=DEMO_ACCOUNT, name="SDK zones",
               scope={"key": scope_key, "objects": [{"key": zone}]})
    ensure("SDK zones" in e.body["errors"][0]["message"], "duplicate name named", e.body)
    raises(BadRequestError, 400, rg.create, account_id=DEMO_ACCOUNT, name="SDK bad",
           scope={"key": scope_key, "objects": []})

    zone2 = "com.cloudflare.api.account.zone.%s" % ("cd" * 16)
    updated = typed(
        rg.update(created.id, account_id=DEMO_ACCOUNT, name="SDK zones renamed",
                  scope={"key": scope_key, "objects": [{"key": zone}, {"key": zone2}]}),
        ResourceGroupUpdateResponse,
    )
    equal((updated.id, updated.name, len(updated.scope.objects)), (created.id, "SDK zones renamed", 2), "updated")
    named = [g.id for g in rg.list(account_id=DEMO_ACCOUNT, name="SDK zones renamed")]
    equal(named, [created.id], "resource_groups.list(name=...)")
    by_id = [g.id for g in rg.list(account_id=DEMO_ACCOUNT, id=created.id)]
    equal(by_id, [created.id], "resource_groups.list(id=...)")
    got = typed(rg.get(created.id, account_id=DEMO_ACCOUNT), ResourceGroupGetResponse)
    equal(got.name, "SDK zones renamed", "get after update")
    # The SDK's update makes `name` and `scope` each optional: what is left out is kept.
    only_name = typed(rg.update(created.id, account_id=DEMO_ACCOUNT, name="SDK zones (name only)"),
                      ResourceGroupUpdateResponse)
    equal((only_name.name, [o.key for o in only_name.scope.objects]), ("SDK zones (name only)", [zone, zone2]),
          "name-only update keeps the scope")
    only_scope = typed(rg.update(created.id, account_id=DEMO_ACCOUNT, scope={"key": scope_key, "objects": [{"key": zone}]}),
                       ResourceGroupUpdateResponse)
    equal((only_scope.name, [o.key for o in only_scope.scope.objects]), ("SDK zones (name only)", [zone]),
          "scope-only update keeps the name")
    typed(rg.update(created.id, account_id=DEMO_ACCOUNT, name="SDK zones renamed"), ResourceGroupUpdateResponse)
    raises(NotFoundError, 404, rg.update, "0" * 32, account_id=DEMO_ACCOUNT, name="nope")
    # Deleted in member_policies below, once a member policy has used it.


@check
def resource_groups_listed_whole():
    # The SDK reads the list as one page and sends no paging parameters: every group.
    account = typed(JOHN_C.accounts.create(name="SDK Groups", type="standard"), Account).id
    scope = {"key": "com.cloudflare.api.account.%s" % account, "objects": [{"key": "*"}]}
    made = [JOHN_C.iam.resource_groups.create(account_id=account, name="group %02d" % i, scope=scope).id
            for i in range(23)]
    listed = [g.id for g in JOHN_C.iam.resource_groups.list(account_id=account)]
    equal(sorted(listed), sorted(made), "all 23 groups")
    JOHN_C.accounts.delete(account_id=account)


# --- account members (the account's view) ----------------------------------------------------

@check
def members_list_paginated():
    page = JOHN_C.accounts.members.list(account_id=DEMO_ACCOUNT, per_page=5)
    members, pages = all_pages(page)
    # 5 + 5 + 1 members, then the empty page past the end that stops the SDK's iteration.
    equal(pages, 4, "pages fetched for 12 members at per_page=5")
    for m in members:
        typed(m, Member)
    ids = [m.id for m in members]
    equal(len(ids), DEMO_MEMBER_COUNT, "member count")
    equal(len(set(ids)), len(ids), "no member repeats across pages")
    john = next(m for m in members if m.id == JOHN_DEMO_MEMBERSHIP)
    equal((john.email, john.status, john.user.id), ("user@example.com", "accepted", JOHN_ID), "john as a member")
    equal(john.user.two_factor_authentication_enabled, True, "member user 2FA")
    ensure(isinstance(john.roles[0], Role), "member roles are full Role objects", john.roles)
    equal(john.roles[0].permissions.organization.write, True, "roles[0].permissions.organization.write")
    zr = next(m for m in members if m.email == "zone-reader@example.com")
    equal(zr.roles, [], "a policy member has no roles")
    policy = zr.policies[0]
    equal(policy.access, "allow", "policy access")
    equal(sorted(g.id for g in policy.permission_groups), sorted([ZONE_READ_GROUP, MAGIC_GROUP]), "policy groups")
    equal(policy.resource_groups[0].id, DEMO_RESOURCE_GROUP, "policy resource group")
    equal(policy.resource_groups[0].scope.key, "com.cloudflare.api.account.%s" % DEMO_ACCOUNT, "resource group scope")


@check
def members_list_filters_and_order():
    lst = JOHN_C.accounts.members.list
    pending = [m.email for m in lst(account_id=DEMO_ACCOUNT, status="pending")]
    equal(sorted(pending), ["jane@example.com", "newhire@example.com", "zone-reader@example.com"], "status=pending")
    accepted = [m for m in lst(account_id=DEMO_ACCOUNT, status="accepted", per_page=50)]
    equal(len(accepted), 9, "status=accepted")
    emails = [m.email for m in lst(account_id=DEMO_ACCOUNT, order="user.email", direction="desc", per_page=50)]
    equal(emails, sorted(emails, reverse=True), "order=user.email desc")
    emails = [m.user.email for m in lst(account_id=DEMO_ACCOUNT, order="user.email", direction="asc", per_page=50)]
    equal(emails, sorted(emails), "order=user.email asc")
    names = [m.user.first_name for m in lst(account_id=DEMO_ACCOUNT, order="user.first_name", status="accepted", per_page=50)]
    equal(names, sorted(names), "order=user.first_name")
    names = [m.user.last_name for m in lst(account_id=DEMO_ACCOUNT, order="user.last_name", direction="desc",
                                           status="accepted", per_page=50)]
    equal(names, sorted(names, reverse=True), "order=user.last_name desc")
    statuses = [m.status for m in lst(account_id=DEMO_ACCOUNT, order="status", per_page=50)]
    equal(statuses, sorted(statuses), "order=status")


@check
def members_get():
    m = typed(JOHN_C.accounts.members.get(JOHN_DEMO_MEMBERSHIP, account_id=DEMO_ACCOUNT), Member)
    equal((m.id, m.email, m.status), (JOHN_DEMO_MEMBERSHIP, "user@example.com", "accepted"), "member")
    equal((m.user.first_name, m.user.last_name), ("John", "Appleseed"), "member user name")
    equal([r.id for r in m.roles], [ACCOUNT_ADMIN_ROLE], "member role ids")
    typed(m.roles[0], Role)
    equal(m.roles[0].permissions.dns_records.read, True, "role grants are typed")
    raises(NotFoundError, 404, JOHN_C.accounts.members.get, "0" * 32, account_id=DEMO_ACCOUNT)
    # A non-member sees the account as missing.
    raises(NotFoundError, 404, JOHN_C.accounts.members.list, account_id=ACME_ACCOUNT)


@check
def members_invite_with_roles_update_delete():
    mem = JOHN_C.accounts.members
    invited = typed(
        mem.create(account_id=DEMO_ACCOUNT, email="sdk.invitee@example.com", roles=[role_id("Administrator Read Only")]),
        Member,
    )
    equal((invited.email, invited.status), ("sdk.invitee@example.com", "pending"), "invited member")
    equal([r.name for r in invited.roles], ["Administrator Read Only"], "invited roles")
    equal(invited.roles[0].permissions.organization.write, False, "read-only grant")
    equal(invited.policies, [], "no policies")
    equal(invited.user.email, "sdk.invitee@example.com", "invitee without a user yet")
    STATE["invitee"] = invited.id

    # Inviting the same email again (any case) is a conflict.
    e = raises(ConflictError, 409, mem.create, account_id=DEMO_ACCOUNT, email="SDK.Invitee@example.com",
               roles=[role_id("DNS")])
    ensure("sdk.invitee@example.com" in e.body["errors"][0]["message"].lower(), "conflict names the email", e.body)
    raises(ConflictError, 409, mem.create, account_id=DEMO_ACCOUNT, email="ana@example.com", roles=[role_id("DNS")])
    raises(BadRequestError, 400, mem.create, account_id=DEMO_ACCOUNT, email="not-an-email", roles=[role_id("DNS")])
    raises(BadRequestError, 400, mem.create, account_id=DEMO_ACCOUNT, email="x@example.com", roles=["0" * 32])

    # Update: roles (the SDK sends role objects {"id": ...}), then policies.
    updated = typed(
        mem.update(invited.id, account_id=DEMO_ACCOUNT, roles=[{"id": role_id("DNS")}, {"id": role_id("Billing")}]),
        Member,
    )
    equal(sorted(r.name for r in updated.roles), ["Billing", "DNS"], "updated roles")
    equal(updated.policies, [], "still no policies")
    fetched = typed(mem.get(invited.id, account_id=DEMO_ACCOUNT), Member)
    equal(sorted(r.name for r in fetched.roles), ["Billing", "DNS"], "roles after update")
    # `roles` is optional in the SDK's update (and the schema's): an update without it keeps them.
    same = typed(mem.update(invited.id, account_id=DEMO_ACCOUNT), Member)
    equal(sorted(r.name for r in same.roles), ["Billing", "DNS"], "roles after an empty update")
    raises(NotFoundError, 404, mem.update, "0" * 32, account_id=DEMO_ACCOUNT)

    with_policies = typed(
        mem.update(
            invited.id,
            account_id=DEMO_ACCOUNT,
            policies=[{
                "access": "allow",
                "permission_groups": [{"id": ZONE_READ_GROUP}],
                "resource_groups": [{"id": DEMO_RESOURCE_GROUP}],
            }],
        ),
        Member,
    )
    equal(with_policies.roles, [], "roles replaced by policies")
    equal(len(with_policies.policies), 1, "one policy")
    p = with_policies.policies[0]
    equal((p.access, [g.id for g in p.permission_groups], [g.id for g in p.resource_groups]),
          ("allow", [ZONE_READ_GROUP], [DEMO_RESOURCE_GROUP]), "policy")
    equal(p.permission_groups[0].name, "Zone Read", "policy permission group name")
    ensure(p.id and len(p.id) == 32, "policy has an id", p.id)

    gone = typed(mem.delete(invited.id, account_id=DEMO_ACCOUNT), MemberDeleteResponse)
    equal(gone.id, invited.id, "deleted member id")
    raises(NotFoundError, 404, mem.get, invited.id, account_id=DEMO_ACCOUNT)
    raises(NotFoundError, 404, mem.delete, invited.id, account_id=DEMO_ACCOUNT)
    # After removal the email may be invited again.
    again = typed(mem.create(account_id=DEMO_ACCOUNT, email="sdk.invitee@example.com", roles=[role_id("DNS")]), Member)
    ensure(again.id != invited.id, "a re-invitation is a new member", again.id)
    typed(mem.delete(again.id, account_id=DEMO_ACCOUNT), MemberDeleteResponse)


@check
def members_invite_with_policies():
    mem = JOHN_C.accounts.members
    rg_id = STATE["resource_group"]
    created = typed(
        mem.create(
            account_id=DEMO_ACCOUNT,
            email="sdk.policy@example.com",
            policies=[
                {
                    "access": "allow",
                    "permission_groups": [{"id": ZONE_READ_GROUP}, {"id": MAGIC_GROUP}],
                    "resource_groups": [{"id": rg_id}],
                },
                {"access": "deny", "permission_groups": [{"id": MAGIC_GROUP}], "resource_groups": [{"id": rg_id}]},
            ],
        ),
        Member,
    )
    equal((created.email, created.status, created.roles), ("sdk.policy@example.com", "pending", []), "policy member")
    equal([p.access for p in created.policies], ["allow", "deny"], "policy accesses")
    allow = created.policies[0]
    equal(sorted(g.id for g in allow.permission_groups), sorted([ZONE_READ_GROUP, MAGIC_GROUP]), "allow groups")
    equal(allow.resource_groups[0].name, "SDK zones renamed", "resource group embedded")
    equal(allow.resource_groups[0].scope.key, "com.cloudflare.api.account.%s" % DEMO_ACCOUNT, "embedded scope")
    # A resource group in use by a policy cannot be deleted.
    raises(ConflictError, 409, JOHN_C.iam.resource_groups.delete, rg_id, account_id=DEMO_ACCOUNT)
    # Back to roles.
    back = typed(mem.update(created.id, account_id=DEMO_ACCOUNT, roles=[{"id": role_id("Analytics")}]), Member)
    equal(([r.name for r in back.roles], back.policies), (["Analytics"], []), "policies replaced by roles")
    typed(mem.delete(created.id, account_id=DEMO_ACCOUNT), MemberDeleteResponse)
    gone = typed(JOHN_C.iam.resource_groups.delete(rg_id, account_id=DEMO_ACCOUNT), ResourceGroupDeleteResponse)
    equal(gone.id, rg_id, "deleted resource group id")
    raises(NotFoundError, 404, JOHN_C.iam.resource_groups.get, rg_id, account_id=DEMO_ACCOUNT)
    ensure(rg_id not in [g.id for g in JOHN_C.iam.resource_groups.list(account_id=DEMO_ACCOUNT)], "gone from list")


@check
def last_administrator_is_kept():
    account_id = STATE["new_accounts"][NEW_ACCOUNTS[0]]
    members = [typed(m, Member) for m in JOHN_C.accounts.members.list(account_id=account_id)]
    equal([m.email for m in members], ["user@example.com"], "the creator is the only member")
    owner = members[0]
    equal([r.name for r in owner.roles], ["Super Administrator - All Privileges"], "creator's role")
    equal(owner.roles[0].permissions.organization.write, True, "creator can write")
    raises(ConflictError, 409, JOHN_C.accounts.members.delete, owner.id, account_id=account_id)
    raises(ConflictError, 409, JOHN_C.accounts.members.update, owner.id, account_id=account_id,
           roles=[{"id": role_id("Billing")}])
    raises(ConflictError, 409, JOHN_C.memberships.delete, owner.id)
    still = typed(JOHN_C.accounts.members.get(owner.id, account_id=account_id), Member)
    equal([r.name for r in still.roles], ["Super Administrator - All Privileges"], "role unchanged")

    # Direct Add ("status": "accepted") is for enterprise accounts, which only an operator
    # makes: on this standard account it is refused.
    super_admin = role_id("Super Administrator - All Privileges")
    raises(BadRequestError, 400, JOHN_C.accounts.members.create, account_id=account_id,
           email="ana@example.com", roles=[super_admin], status="accepted")
    # With a second administrator (invited, and accepted), the first may leave.
    # ("Administrator" cannot manage memberships: organization is read-only in that role.)
    invited = typed(JOHN_C.accounts.members.create(account_id=account_id, email="ana@example.com",
                                                   roles=[super_admin]), Member)
    equal(invited.status, "pending", "an invitation")
    ana_c = client(("ana@example.com", "00de000000000000000000000000000000001"))
    accepted = typed(ana_c.memberships.update(invited.id, status="accepted"), MembershipUpdateResponse)
    equal(accepted.status, "accepted", "ana accepted")
    ana = typed(JOHN_C.accounts.members.get(invited.id, account_id=account_id), Member)
    equal(ana.user.first_name, "Ana", "existing user attached")
    left = typed(JOHN_C.memberships.delete(owner.id), MembershipDeleteResponse)
    equal(left.id, owner.id, "left the account")
    raises(NotFoundError, 404, JOHN_C.accounts.members.list, account_id=account_id)
    raises(ConflictError, 409, ana_c.accounts.members.delete, ana.id, account_id=account_id)


# --- a second user: invitations ---------------------------------------------------------------

@check
def jane_accepts_invitation():
    invitations = [typed(m, Membership) for m in JANE_C.memberships.list(status="pending")]
    equal([m.id for m in invitations], [JANE_DEMO_INVITATION], "jane's pending invitations")
    inv = invitations[0]
    equal((inv.account.name, inv.roles), ("Demo Account", ["Administrator Read Only"]), "invitation")
    got = typed(JANE_C.memberships.get(JANE_DEMO_INVITATION), MembershipGetResponse)
    equal(got.status, "pending", "before accepting")
    # Not an account member yet: the account is hidden.
    raises(NotFoundError, 404, JANE_C.accounts.members.list, account_id=DEMO_ACCOUNT)
    raises(NotFoundError, 404, JANE_C.memberships.get, JOHN_DEMO_MEMBERSHIP)

    accepted = typed(JANE_C.memberships.update(JANE_DEMO_INVITATION, status="accepted"), MembershipUpdateResponse)
    equal((accepted.id, accepted.status), (JANE_DEMO_INVITATION, "accepted"), "accepted")
    equal((accepted.permissions.organization.read, accepted.permissions.organization.write), (True, False),
          "read-only permissions")
    again = typed(JANE_C.memberships.update(JANE_DEMO_INVITATION, status="accepted"), MembershipUpdateResponse)
    equal(again.status, "accepted", "accepting twice is idempotent")
    raises(ConflictError, 409, JANE_C.memberships.update, JANE_DEMO_INVITATION, status="rejected")

    seen = typed(JOHN_C.accounts.members.get(JANE_DEMO_INVITATION, account_id=DEMO_ACCOUNT), Member)
    equal((seen.status, seen.user.first_name, seen.user.email), ("accepted", "Jane", "jane@example.com"),
          "the admin sees jane accepted")
    equal(DEMO_ACCOUNT in [a.id for a in JANE_C.accounts.list()], True, "jane lists the demo account")
    # Read-only: jane can list members but not invite.
    equal(len(list(JANE_C.accounts.members.list(account_id=DEMO_ACCOUNT, per_page=50))), DEMO_MEMBER_COUNT,
          "jane lists members")
    raises(PermissionDeniedError, 403, JANE_C.accounts.members.create, account_id=DEMO_ACCOUNT,
           email="someone@example.com", roles=[role_id("DNS")])


@check
def bob_without_2fa_cannot_accept():
    invited = typed(JOHN_C.accounts.members.create(account_id=DEMO_ACCOUNT, email="Bob@Example.com",
                                                   roles=[role_id("Billing")]), Member)
    # Until bob accepts, the account sees only the address it invited, not his profile.
    equal((invited.status, invited.user.id, invited.user.first_name, invited.user.email),
          ("pending", None, None, "Bob@Example.com"), "bob's profile is not shown before he accepts")
    pending = [typed(m, Membership) for m in BOB_C.memberships.list(status="pending")]
    equal(sorted(m.id for m in pending), sorted([invited.id, BOB_SANDBOX_INVITATION]), "bob's invitations")
    e = raises(PermissionDeniedError, 403, BOB_C.memberships.update, invited.id, status="accepted")
    message = e.body["errors"][0]["message"].lower()
    ensure("two-factor" in message or "2fa" in message, "the 403 says why", message)
    equal(typed(BOB_C.memberships.get(invited.id), MembershipGetResponse).status, "pending", "still pending")
    # The Sandbox account does not enforce 2FA: bob may accept that one.
    ok = typed(BOB_C.memberships.update(BOB_SANDBOX_INVITATION, status="accepted"), MembershipUpdateResponse)
    equal((ok.status, ok.account.id), ("accepted", SANDBOX_ACCOUNT), "bob accepted the sandbox")
    # Bob rejects the demo invitation; it can be sent again afterwards.
    no = typed(BOB_C.memberships.update(invited.id, status="rejected"), MembershipUpdateResponse)
    equal(no.status, "rejected", "bob rejected")
    # The account still shows the rejected invitation (and lists it under status=rejected, a
    # filter the SDK offers), although the SDK's `Member.status` is typed "accepted" |
    # "pending": at run time the SDK keeps the value as is, without warnings.
    rejected = [m for m in JOHN_C.accounts.members.list(account_id=DEMO_ACCOUNT, status="rejected")]
    equal([(m.id, m.status) for m in rejected], [(invited.id, "rejected")], "members.list(status=rejected)")
    ensure(isinstance(rejected[0], Member), "a rejected member is still a Member", type(rejected[0]))
    equal(rejected[0].to_dict()["status"], "rejected", "to_dict of a rejected member")
    equal(JOHN_C.accounts.members.get(invited.id, account_id=DEMO_ACCOUNT).status, "rejected", "members.get")
    again = typed(JOHN_C.accounts.members.create(account_id=DEMO_ACCOUNT, email="bob@example.com",
                                                 roles=[role_id("Billing")]), Member)
    equal(again.status, "pending", "re-invited after a rejection")
    typed(JOHN_C.accounts.members.delete(again.id, account_id=DEMO_ACCOUNT), MemberDeleteResponse)
    typed(BOB_C.memberships.delete(invited.id), MembershipDeleteResponse)
    equal([m.id for m in BOB_C.memberships.list(account={"name": "Demo Account"})], [], "bob has nothing left there")


@check
def member_list_after_the_flow():
    members = [typed(m, Member) for m in JOHN_C.accounts.members.list(account_id=DEMO_ACCOUNT, per_page=50)]
    equal(len(members), DEMO_MEMBER_COUNT, "back to the demo's member count")
    statuses = {m.email: m.status for m in members}
    equal(statuses["jane@example.com"], "accepted", "jane is a member now")


# --- the user's invites, and deleting an account -------------------------------------------

@check
def invite_answered_then_account_deleted():
    account = typed(JOHN_C.accounts.create(name="SDK Invites", type="standard"), Account)
    invited = typed(JOHN_C.accounts.members.create(account_id=account.id, email=BOB[0],
                                                   roles=["87e7860bc4c445faba075646dac38cca"]), Member)
    accepted = typed(BOB_C.user.invites.edit(invited.id, status="accepted"), Invite)
    equal((accepted.id, accepted.status, accepted.roles), (invited.id, "accepted", ["DNS"]), "accepted invite")
    equal(BOB_C.memberships.get(invited.id).status, "accepted", "the membership is accepted")
    raises(PermissionDeniedError, 403, BOB_C.accounts.delete, account_id=account.id)
    gone = typed(JOHN_C.accounts.delete(account_id=account.id), AccountDeleteResponse)
    equal(gone.id, account.id, "deleted account id")
    raises(NotFoundError, 404, JOHN_C.accounts.get, account_id=account.id)
    raises(NotFoundError, 404, BOB_C.memberships.get, invited.id)


@check
def user_group_grants_a_member_rights():
    account = typed(JOHN_C.accounts.create(name="SDK Groups", type="standard"), Account).id
    everything = JOHN_C.iam.resource_groups.create(
        account_id=account, name="everything",
        scope={"key": "com.cloudflare.api.account.%s" % account, "objects": [{"key": "*"}]},
    ).id
    def policy(group):
        return {"access": "allow", "permission_groups": [{"id": group}], "resource_groups": [{"id": everything}]}
    bob = JOHN_C.accounts.members.create(account_id=account, email=BOB[0], policies=[policy(ZONE_READ_GROUP)])
    BOB_C.memberships.update(bob.id, status="accepted")
    raises(PermissionDeniedError, 403, BOB_C.accounts.get, account_id=account)

    group = typed(JOHN_C.iam.user_groups.create(account_id=account, name="readers",
                                                policies=[policy(SETTINGS_READ_GROUP)]), UserGroupCreateResponse)
    equal(group.policies[0].permission_groups[0].name, "Account Settings Read", "the group's policy")
    added = [typed(m, GroupMemberCreateResponse)
             for m in JOHN_C.iam.user_groups.members.create(group.id, account_id=account, members=[{"id": bob.id}])]
    equal([m.id for m in added], [bob.id], "the group's members")
    equal(typed(BOB_C.accounts.get(account_id=account), Account).name, "SDK Groups", "bob reads the account now")

    listed = [typed(g, UserGroupListResponse) for g in JOHN_C.iam.user_groups.list(account_id=account, fuzzy_name="READ")]
    equal([g.id for g in listed], [group.id], "groups by part of their name")
    typed(JOHN_C.iam.user_groups.get(group.id, account_id=account), UserGroupGetResponse)
    renamed = typed(JOHN_C.iam.user_groups.update(group.id, account_id=account, name="Readers"), UserGroupUpdateResponse)
    equal(renamed.name, "Readers", "renamed group")
    members = [typed(m, GroupMemberListResponse)
               for m in JOHN_C.iam.user_groups.members.list(group.id, account_id=account)]
    equal([(m.email, m.status) for m in members], [(BOB[0], "accepted")], "listed members")
    one = typed(JOHN_C.iam.user_groups.members.get(bob.id, account_id=account, user_group_id=group.id),
                GroupMemberGetResponse)
    ensure(one.created_at is not None, "when bob joined the group", one)
    typed(JOHN_C.iam.user_groups.members.delete(bob.id, account_id=account, user_group_id=group.id),
          GroupMemberDeleteResponse)
    raises(PermissionDeniedError, 403, BOB_C.accounts.get, account_id=account)
    gone = typed(JOHN_C.iam.user_groups.delete(group.id, account_id=account), UserGroupDeleteResponse)
    equal(gone.id, group.id, "deleted group")
    raises(NotFoundError, 404, JOHN_C.iam.user_groups.get, group.id, account_id=account)
    JOHN_C.accounts.delete(account_id=account)


# --- a few hundred of everything ---------------------------------------------------------------

@check
def bulk_auto_pagination():
    bulk = client(BULK)
    items, pages = all_pages(bulk.memberships.list(per_page=50))
    for m in items:
        typed(m, Membership)
    equal(len(items), BULK_MEMBERSHIPS, "memberships paged through")
    equal(len({m.id for m in items}), BULK_MEMBERSHIPS, "no membership repeats")
    equal(pages, 7, "six pages of memberships and the empty page that ends them")
    pending = list(bulk.memberships.list(status="pending", per_page=50))
    equal(len(pending), 125, "pending memberships across pages")
    members, pages = all_pages(bulk.accounts.members.list(account_id=BULK_ACCOUNT, per_page=50, order="user.email"))
    for m in members:
        typed(m, Member)
    equal(len(members), BULK_MEMBERS, "members paged through")
    emails = [m.email for m in members]
    equal(len(set(emails)), BULK_MEMBERS, "no member repeats")
    equal(emails, sorted(emails, key=str.lower), "ordered by email across pages")
    e = raises(BadRequestError, 400, bulk.accounts.members.list, account_id=BULK_ACCOUNT, per_page=3)
    ensure("per_page" in e.body["errors"][0]["message"], "the error names per_page", e.body)


# --- API tokens ------------------------------------------------------------------------------

@check
def api_tokens():
    groups = {g.name: g.id for g in (typed(g, TokenPermissionGroup) for g in JOHN_C.user.tokens.permission_groups.list())}
    ensure("Memberships Read" in groups and "API Tokens Write" in groups, "token permission groups", sorted(groups))
    policies = [{
        "effect": "allow",
        "permission_groups": [{"id": groups["Memberships Read"]}],
        "resources": {"com.cloudflare.api.user." + JOHN_ID: "*"},
    }]
    created = typed(JOHN_C.user.tokens.create(
        name="sdk token", policies=policies, condition={"request_ip": {"in": ["127.0.0.0/8", "::1/128"]}},
        expires_on=datetime(2999, 1, 1),
    ), TokenCreateResponse)
    ensure(created.value and len(created.value) == 40, "the secret, once", created.value)
    equal(created.status, "active", "new token status")

    bearer = Cloudflare(api_token=created.value, base_url=BASE_URL, max_retries=0)
    equal(sorted(m.id for m in bearer.memberships.list()), sorted(m.id for m in JOHN_C.memberships.list()),
          "memberships.list with the new token")
    verified = typed(bearer.user.tokens.verify(), TokenVerifyResponse)
    equal((verified.id, verified.status), (created.id, "active"), "verify")
    e = raises(PermissionDeniedError, 403, bearer.user.get)
    equal(e.body["errors"][0]["code"], 9109, "a group the token lacks")

    got = typed(JOHN_C.user.tokens.get(created.id), Token)
    equal(got.name, "sdk token", "token name")
    # The use is recorded just after the request that made it is answered.
    for _ in range(500):
        if got.last_used_on is not None:
            break
        time.sleep(0.01)
        got = typed(JOHN_C.user.tokens.get(created.id), Token)
    ensure(got.last_used_on is not None, "use recorded", got.last_used_on)
    listed = [typed(t, Token) for t in JOHN_C.user.tokens.list()]
    ensure(created.id in [t.id for t in listed], "listed")

    updated = typed(JOHN_C.user.tokens.update(created.id, name="sdk token (off)", policies=policies, status="disabled"), Token)
    equal(updated.status, "disabled", "disabled")
    e = raises(PermissionDeniedError, 403, bearer.memberships.list)
    equal(e.body["errors"][0]["code"], 10000, "a disabled token")

    JOHN_C.user.tokens.update(created.id, name="sdk token", policies=policies, status="active")
    rolled = JOHN_C.user.tokens.value.update(created.id)
    ensure(isinstance(rolled, str) and len(rolled) == 40 and rolled != created.value, "rolled value", rolled)
    raises(PermissionDeniedError, 403, bearer.memberships.list)
    Cloudflare(api_token=rolled, base_url=BASE_URL).memberships.list()

    deleted = typed(JOHN_C.user.tokens.delete(created.id), TokenDeleteResponse)
    equal(deleted.id, created.id, "deleted id")
    raises(NotFoundError, 404, JOHN_C.user.tokens.get, created.id)


@check
def account_owned_tokens():
    account = typed(JOHN_C.accounts.create(name="SDK Account Tokens", type="standard"), Account).id
    tokens = JOHN_C.accounts.tokens
    groups = {g.name: g.id for g in (typed(g, AccountTokenPermissionGroup)
                                     for g in tokens.permission_groups.list(account_id=account))}
    ensure("Account Settings Read" in groups and "Memberships Read" not in groups,
           "an account's token permission groups", sorted(groups))
    jane = JOHN_C.accounts.members.create(account_id=account, email=JANE[0], roles=["795df1c379e2469e89ab15cca71e91a0"])
    JANE_C.memberships.update(jane.id, status="accepted")
    policies = [{
        "effect": "allow",
        "permission_groups": [{"id": groups["Account Settings Read"]}],
        "resources": {"com.cloudflare.api.account." + account: "*"},
    }]
    created = typed(JANE_C.accounts.tokens.create(account_id=account, name="ci", policies=policies),
                    AccountTokenCreateResponse)
    ensure(created.value and len(created.value) == 40, "the secret, once", created.value)
    got = typed(tokens.get(created.id, account_id=account), Token)
    equal(got.creator_email_at_creation, JANE[0], "who made it")
    listed = [typed(t, Token) for t in tokens.list(account_id=account)]
    equal([t.id for t in listed], [created.id], "the account's tokens")

    # As a bearer: the account, within its policies, and no user.
    bearer = Cloudflare(api_token=created.value, base_url=BASE_URL, max_retries=0)
    equal(typed(bearer.accounts.get(account_id=account), Account).name, "SDK Account Tokens", "read with it")
    equal([a.id for a in bearer.accounts.list()], [account], "the one account it reaches")
    verified = typed(bearer.accounts.tokens.verify(account_id=account), AccountTokenVerifyResponse)
    equal((verified.id, verified.status), (created.id, "active"), "verify")
    raises(PermissionDeniedError, 403, bearer.accounts.update, account_id=account, id=account, name="x", type="standard")
    raises(PermissionDeniedError, 403, bearer.user.get)
    raises(NotFoundError, 404, bearer.accounts.get, account_id=DEMO_ACCOUNT)

    # Jane leaves; the token stays.
    JANE_C.memberships.delete(jane.id)
    bearer.accounts.get(account_id=account)

    updated = typed(tokens.update(created.id, account_id=account, name="ci (off)", policies=policies,
                                  status="disabled"), Token)
    equal(updated.status, "disabled", "disabled")
    raises(PermissionDeniedError, 403, bearer.accounts.get, account_id=account)
    tokens.update(created.id, account_id=account, name="ci", policies=policies, status="active")
    rolled = tokens.value.update(created.id, account_id=account)
    ensure(isinstance(rolled, str) and len(rolled) == 40 and rolled != created.value, "rolled value", rolled)
    fresh = Cloudflare(api_token=rolled, base_url=BASE_URL, max_retries=0)
    fresh.accounts.get(account_id=account)
    deleted = typed(tokens.delete(created.id, account_id=account), AccountTokenDeleteResponse)
    equal(deleted.id, created.id, "deleted id")
    raises(PermissionDeniedError, 403, fresh.accounts.get, account_id=account)

    # Deleting the account ends its tokens.
    last = tokens.create(account_id=account, name="last", policies=policies).value
    JOHN_C.accounts.delete(account_id=account)
    raises(PermissionDeniedError, 403, Cloudflare(api_token=last, base_url=BASE_URL, max_retries=0).accounts.list)


@check
def audit_log_after_the_changes():
    account = typed(JOHN_C.accounts.create(name="SDK Audit", type="standard"), Account).id
    invited = JOHN_C.accounts.members.create(account_id=account, email="audited@example.com",
                                              roles=["87e7860bc4c445faba075646dac38cca"])
    JOHN_C.accounts.members.delete(invited.id, account_id=account)
    v1 = [typed(e, AuditLog) for e in JOHN_C.audit_logs.list(account_id=account, per_page=2)]
    equal([(e.action.type, e.resource.type) for e in v1],
          [("delete", "account.member"), ("create", "account.member"),
           ("create", "account.member"), ("create", "account")], "v1, newest first, page by page")
    equal((v1[0].actor.email, v1[0].actor.type, v1[0].resource.id), (JOHN[0], "user", invited.id), "who removed whom")
    ensure(v1[1].new_value and "audited@example.com" in v1[1].new_value, "the invitation's new value", v1[1])
    only = list(JOHN_C.audit_logs.list(account_id=account, action={"type": "delete"}, actor={"email": JOHN[0]}))
    equal([e.id for e in only], [v1[0].id], "filtered by action and actor")
    since = datetime(2000, 1, 1)
    v2 = [typed(e, AuditListResponse)
          for e in JOHN_C.accounts.logs.audit.list(account_id=account, since=since, before=datetime(2999, 1, 1), limit=3)]
    equal([e.id for e in v2], [e.id for e in v1], "v2 by cursor, the same entries")
    equal((v2[0].actor.context, v2[0].actor.type, v2[0].raw.method), ("api_key", "user", "DELETE"), "v2 actor and request")
    mine = [typed(e, AuditLog) for e in JOHN_C.user.audit_logs.list(per_page=5)]
    equal(mine[0].id, v1[0].id, "the user's own log, newest first")
    raises(NotFoundError, 404, BOB_C.audit_logs.list, account_id=account)
    # The exclusion filters as the SDK sends them (`actor_email.not=...`), repeated.
    window = {"account_id": account, "since": since, "before": datetime(2999, 1, 1)}
    left = [e.id for e in JOHN_C.accounts.logs.audit.list(**window, action_type={"not": ["create"]})]
    equal(left, [v1[0].id], "action_type.not leaves the creations out")
    none = list(JOHN_C.accounts.logs.audit.list(**window, actor_email={"not": ["nobody@example.com", JOHN[0]]}))
    equal(none, [], "actor_email.not, two values")
    # The member's history, from its removal's entry; the product categories.
    history = JOHN_C.accounts.logs.audit.history(v2[0].id, **window, action_time=v2[0].action.time)
    equal([(e.action.type, e.resource.id) for e in history],
          [("delete", invited.id), ("create", invited.id)], "the member's history, newest first")
    categories = list(JOHN_C.accounts.logs.audit.product_categories(account_id=account))
    ensure(categories and categories[0].value and categories[0].products, "product categories", categories)
    in_category = list(JOHN_C.accounts.logs.audit.list(**window, product_category=[categories[0].value]))
    equal(len(in_category), 4, "product_category")
    JOHN_C.accounts.delete(account_id=account)
    equal(next(iter(JOHN_C.user.audit_logs.list(per_page=1))).resource.id, account, "the deletion, in the deleter's log")


# --- main ------------------------------------------------------------------------------------

def main():
    global BASE_URL, JOHN_C, JANE_C, BOB_C
    BASE_URL = os.environ.get("ROSTER_BASE_URL")
    if not BASE_URL:
        print("ROSTER_BASE_URL is not set (e.g. http://127.0.0.1:8080/client/v4)", file=sys.stderr)
        return 2
    JOHN_C = client(JOHN)
    JANE_C = client(JANE)
    BOB_C = client(BOB)
    only = set(sys.argv[1:])
    passed = failed = 0
    started = time.monotonic()
    for fn in CHECKS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s: unexpected exception\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
        else:
            passed += 1
            print("ok   %s (%.2fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
    print("cloudflare %s against %s in %.1fs" % (cloudflare.__version__, BASE_URL, time.monotonic() - started))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
