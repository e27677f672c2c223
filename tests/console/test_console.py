"""Every flow of the console in a real browser (headless Chromium), as a person uses it:
with JavaScript on, and for the forms with it off."""

import http.server
import re
import threading

from playwright.sync_api import expect

from conftest import (
    BASE,
    DEMO,
    DEMO_ACCOUNT,
    DNS_ROLE,
    JANE,
    api,
    check_accessible,
    sign_in,
)

MEMBERS = f"{BASE}/console/accounts/{DEMO_ACCOUNT}/members"


def member_emails():
    _, found = api("GET", f"/accounts/{DEMO_ACCOUNT}/members?per_page=50")
    return [m["email"] for m in found["result"]]


def test_a_signed_out_browser_reaches_no_page(page_nojs):
    for path in ["/console/", "/console/invitations", "/console/tokens", "/console/emulator",
                 f"/console/accounts/{DEMO_ACCOUNT}/members", f"/console/accounts/{DEMO_ACCOUNT}/audit"]:
        page_nojs.goto(BASE + path)
        expect(page_nojs).to_have_url(BASE + "/console/sign-in")
        expect(page_nojs.get_by_role("button", name="Sign in")).to_be_visible()


def test_sign_in_and_out(any_page):
    page = any_page
    page.goto(BASE + "/")
    expect(page).to_have_url(BASE + "/console/sign-in")
    check_accessible(page, "sign-in")
    sign_in(page)
    expect(page.get_by_role("link", name="Demo Account")).to_be_visible()
    expect(page.get_by_text("Signed in as user@example.com")).to_be_visible()
    check_accessible(page, "accounts")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(BASE + "/console/sign-in")
    page.goto(BASE + "/console/")
    expect(page).to_have_url(BASE + "/console/sign-in")


def test_a_wrong_key_is_refused_with_the_apis_message(page):
    page.goto(BASE + "/console/sign-in")
    page.get_by_label("Email").fill("user@example.com")
    page.get_by_label("API key").fill("0" * 37)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown X-Auth-Key or X-Auth-Email")
    expect(page).to_have_url(BASE + "/console/sign-in")
    # The page is answered with the API's status (403), which Chromium reports as an error.
    assert page.errors == ["console error: Failed to load resource: the server responded with a status of 403 (Forbidden)"]
    page.errors.clear()


def test_signing_in_with_an_api_token(page):
    _, made = api("POST", "/user/tokens", {
        "name": "console",
        "policies": [{
            "effect": "allow",
            "permission_groups": [{"id": "15b972a8f4cb43e78efbafb322f7dee5"}],
            "resources": {f"com.cloudflare.api.account.{DEMO_ACCOUNT}": "*"},
        }],
    })
    page.goto(BASE + "/console/sign-in")
    page.get_by_label("API token").fill(made["result"]["value"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text('token “console”')).to_be_visible()
    # What the token may not do, the page says with the API's refusal (a 403 page that
    # htmx shows in place, as it shows any answer).
    page.get_by_role("link", name="Demo Account").click()
    page.get_by_role("link", name="Account API tokens").click()
    expect(page.get_by_role("alert")).to_contain_text("(9109)")
    page.errors.clear()  # the answer's own 403, which Chromium reports


def test_inviting_several_people_at_once(any_page):
    page = any_page
    sign_in(page)
    page.goto(MEMBERS)
    check_accessible(page, "members")
    page.get_by_role("link", name="Invite members").click()
    page.get_by_label("Emails").fill("first@example.com, second@example.com\nnot-an-email\nana@example.com")
    page.get_by_label("DNS", exact=True).check()
    page.get_by_role("button", name="Invite").click()
    outcomes = page.locator("ul.outcomes")
    expect(outcomes).to_contain_text("first@example.com: Invitation sent")
    expect(outcomes).to_contain_text("second@example.com: Invitation sent")
    expect(outcomes).to_contain_text("not-an-email: email is not a valid email address (1002)")
    expect(outcomes).to_contain_text("ana@example.com:")
    check_accessible(page, "invite")
    emails = member_emails()
    assert "first@example.com" in emails and "second@example.com" in emails
    # What was refused stays in the field, to correct and send again.
    expect(page.get_by_label("Emails")).to_have_value("not-an-email\nana@example.com")


def test_members_are_filtered_ordered_and_paged_as_the_api_pages_them(page):
    for i in range(30):
        api("POST", f"/accounts/{DEMO_ACCOUNT}/members",
            {"email": f"bulk{i:02}@example.com", "roles": [DNS_ROLE]})
    sign_in(page)
    page.goto(MEMBERS)
    expect(page.get_by_text("42 members, page 1 of 2.")).to_be_visible()
    page.get_by_label("Status").select_option("pending")
    page.get_by_label("Direction").select_option("desc")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("33 members, page 1 of 2.")).to_be_visible()
    first = page.locator("table.members tbody tr").first
    expect(first).to_contain_text("zone-reader@example.com")
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_text("33 members, page 2 of 2.")).to_be_visible()
    expect(page.locator("table.members tbody tr")).to_have_count(8)


def test_a_members_roles_change_and_their_effective_permissions_show(any_page):
    page = any_page
    sign_in(page)
    page.goto(MEMBERS)
    page.get_by_role("link", name="carlos@example.com", exact=True).click()
    areas = page.locator("table.areas")
    expect(areas.locator("tr", has_text="dns_records")).to_contain_text("Yes")
    check_accessible(page, "member")
    page.get_by_label("DNS", exact=True).uncheck()
    page.get_by_label("Billing", exact=True).check()
    page.get_by_role("button", name="Save roles").click()
    expect(page.get_by_role("status")).to_have_text("Roles saved.")
    expect(areas.locator("tr", has_text="billing")).to_contain_text("Yes")
    expect(page.get_by_text("Role Billing")).to_be_visible()


def test_a_grant_beyond_the_signed_in_users_rights_is_refused(page):
    sign_in(page)
    page.goto(MEMBERS + "/invite")
    page.get_by_label("Emails").fill("boss@example.com")
    page.get_by_label("Super Administrator - All Privileges").check()
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("ul.outcomes")).to_contain_text("(9109)")
    assert "boss@example.com" not in member_emails()


def test_removing_a_member_and_revoking_an_invitation_ask_first(any_page):
    page = any_page
    sign_in(page)
    page.goto(MEMBERS)
    page.get_by_role("link", name="Remove hana@example.com").click()
    expect(page.get_by_role("heading", name="Remove hana@example.com?")).to_be_visible()
    check_accessible(page, "remove")
    page.get_by_role("button", name="Remove member").click()
    expect(page).to_have_url(MEMBERS)
    page.get_by_role("link", name="Revoke jane@example.com").click()
    page.get_by_role("button", name="Revoke invitation").click()
    expect(page).to_have_url(MEMBERS)
    emails = member_emails()
    assert "hana@example.com" not in emails and "jane@example.com" not in emails


def test_a_member_is_found_by_email(any_page):
    page = any_page
    sign_in(page)
    page.goto(MEMBERS)
    page.get_by_label("Find a member by email").fill("Dana@Example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name="dana@example.com")).to_be_visible()
    page.goto(MEMBERS)
    page.get_by_label("Find a member by email").fill("nobody@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("alert")).to_contain_text("nobody@example.com is not a member of this account")
    page.errors.clear()  # the answer's own 404, which Chromium reports


def test_members_export_as_csv(page):
    sign_in(page)
    page.goto(MEMBERS)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    text = open(download.value.path()).read()
    lines = text.strip().splitlines()
    assert lines[0] == "id,email,name,status,roles,two_factor"
    assert len(lines) == 13  # the header and the demo account's 12 members
    assert any(line.split(",")[1] == "carlos@example.com" for line in lines)


def test_an_invitation_is_accepted_and_an_account_left(any_page):
    page = any_page
    sign_in(page, JANE)
    page.get_by_role("link", name="My invitations").click()
    check_accessible(page, "invitations")
    row = page.locator("tr", has_text="Demo Account")
    row.get_by_role("button", name="Accept").click()
    expect(page.locator("tr", has_text="Demo Account")).to_contain_text("accepted")
    page.locator("tr", has_text="Demo Account").get_by_role("button", name="Leave Demo Account").click()
    expect(page.locator("tr", has_text="Demo Account")).to_have_count(0)


def test_api_tokens_are_made_rolled_disabled_and_deleted(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page)
    page.get_by_role("link", name="My API tokens").click()
    page.get_by_label("Token name").fill("deploys")
    page.get_by_label("Memberships Read").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", secret)
    check_accessible(page, "tokens")
    page.get_by_role("button", name="Copy", exact=True).click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.get_by_role("button", name="Roll deploys").click()
    expect(page.locator("#token-secret")).not_to_have_text(secret)
    rolled = page.locator("#token-secret").inner_text().strip()
    assert rolled != secret and len(rolled) == 40
    page.get_by_role("button", name="Disable deploys").click()
    expect(page.locator("tr", has_text="deploys")).to_contain_text("disabled")
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete deploys").click()
    # The demo's own user token (the documentation example's) stays; deploys is gone.
    expect(page.locator("tr", has_text="deploys")).to_have_count(0)
    expect(page.locator("tr", has_text="readonly token")).to_have_count(1)


def test_user_groups_give_their_members_their_policies(any_page):
    page = any_page
    sign_in(page)
    page.goto(f"{BASE}/console/accounts/{DEMO_ACCOUNT}/groups")
    check_accessible(page, "groups")
    page.get_by_label("Group name").fill("Auditors")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="User group Auditors")).to_be_visible()
    page.get_by_label("Access").select_option("allow")
    page.get_by_label("Logs Read").check()
    page.get_by_label(f"com.cloudflare.api.account.{DEMO_ACCOUNT}").check()
    page.get_by_role("button", name="Add policy").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.get_by_label("Member email").fill("eli@example.com")
    page.get_by_role("button", name="Add to group").click()
    expect(page.get_by_role("status")).to_have_text("Added eli@example.com.")
    check_accessible(page, "group")
    group = page.url
    page.get_by_role("link", name="eli@example.com").click()
    expect(page.get_by_text("User group Auditors")).to_be_visible()
    expect(page.locator("table.areas tr", has_text="logs")).to_contain_text("Yes")
    page.goto(group)
    page.get_by_role("button", name="Remove eli@example.com from the group").click()
    expect(page.get_by_text("No members.")).to_be_visible()
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete group").click()
    expect(page.get_by_role("heading", name="User groups")).to_be_visible()


def test_the_audit_log_shows_the_signed_in_users_changes(page):
    sign_in(page)
    page.goto(MEMBERS + "/invite")
    page.get_by_label("Emails").fill("audited@example.com")
    page.get_by_label("DNS", exact=True).check()
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("ul.outcomes")).to_contain_text("Invitation sent")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Actor email").fill("user@example.com")
    page.get_by_role("button", name="Filter").click()
    entry = page.locator("article.entry").first
    expect(entry).to_contain_text("user@example.com")
    expect(entry).to_contain_text("Created member")
    entry.get_by_text("Old and new values").click()
    expect(entry.locator(".diff")).to_contain_text("audited@example.com")
    check_accessible(page, "audit")
    entry.locator("header a").click()
    expect(page.locator("article.entry")).to_have_count(1)


def test_the_emulator_from_the_browser(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page)
    page.get_by_role("link", name="Emulator").click()
    page.get_by_label("Snapshot name").fill("clean")
    page.get_by_role("button", name="Take snapshot").click()
    expect(page.locator("tr", has_text="clean")).to_be_visible()
    api("POST", f"/accounts/{DEMO_ACCOUNT}/members", {"email": "temp@example.com", "roles": [DNS_ROLE]})
    assert "temp@example.com" in member_emails()
    page.get_by_role("button", name="Restore clean").click()
    expect(page.get_by_role("status")).to_have_text("Snapshot clean restored.")
    assert "temp@example.com" not in member_emails()
    page.get_by_label("Advance by").fill("8")
    page.get_by_label("Unit").select_option("days")
    page.get_by_role("button", name="Advance").click()
    expect(page.get_by_text("691200 s from real time")).to_be_visible()
    page.get_by_role("button", name="Back to real time").click()
    expect(page.get_by_text("(real time)")).to_be_visible()
    page.locator("#fault-path").fill("/client/v4/user")
    page.locator("#fault-status").fill("503")
    page.get_by_role("button", name="Add fault").click()
    expect(page.get_by_text("status 503")).to_be_visible()
    status, _ = api("GET", "/user")
    assert status == 503
    # The journal updates itself: the faulted request appears without a reload.
    row = page.locator("#journal tr", has_text="/client/v4/user")
    expect(row).to_contain_text("503", timeout=10_000)
    check_accessible(page, "emulator")
    row.get_by_role("button").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"curl -X 'GET' '{BASE}/client/v4/user' -H 'content-type"), copied
    assert '"x-auth-key: $X_AUTH_KEY"' in copied
    page.get_by_role("button", name="Clear faults").click()
    expect(page.get_by_text("No faults")).to_be_visible()


def test_markup_in_names_is_shown_as_text_and_never_runs(page):
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    api("POST", "/accounts", {"name": hostile})
    api("PATCH", "/user", {"first_name": "<b>bold</b>"})
    sign_in(page)
    expect(page.get_by_role("link", name=hostile)).to_be_visible()
    page.get_by_role("link", name="Demo Account").click()
    expect(page.get_by_text("<b>bold</b>")).to_be_visible()
    assert page.locator("b", has_text="bold").count() == 0
    # page.errors (checked as the fixture ends) would hold any alert's dialog.


class _Evil(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        body = (
            f'<form id="f" method="post" action="{self.target}">'
            '<input name="emails" value="forged@example.com">'
            f'<input name="roles" value="{DNS_ROLE}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_cross_site_form_post_with_the_session_cookie_is_refused(browser):
    context = browser.new_context()
    page = context.new_page()
    page.javascript = True
    sign_in(page)
    _Evil.target = f"{MEMBERS}/invite"
    evil = http.server.HTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        # Another port of the same host is the same site: the browser sends the cookie,
        # and the missing token is what refuses the post.
        page.goto(f"http://127.0.0.1:{evil.server_port}/")
        page.wait_for_load_state()
        expect(page.locator("body")).to_contain_text("Nothing was changed")
        # Another host is another site: the cookie stays home, and the post is not signed in.
        page.goto(f"http://localhost:{evil.server_port}/")
        page.wait_for_load_state()
        expect(page).not_to_have_url(re.compile(".*members$"))
    finally:
        evil.shutdown()
        context.close()
    assert "forged@example.com" not in member_emails()


def test_keyboard_users_see_where_they_are(page):
    sign_in(page)
    page.goto(MEMBERS)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_every_other_page_is_accessible(page):
    sign_in(page)
    for path, name in [
        (f"/console/accounts/{DEMO_ACCOUNT}/roles", "roles"),
        (f"/console/accounts/{DEMO_ACCOUNT}/groups", "groups"),
        ("/console/emulator", "emulator"),
        ("/console/tokens", "tokens"),
    ]:
        page.goto(BASE + path)
        check_accessible(page, name)
