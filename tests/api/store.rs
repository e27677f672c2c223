//! The store's members page, without HTTP: for every order, direction, status filter and
//! page, on each backend, the page the database orders and cuts is the one the domain's
//! reference (`list::paginate` with `text_key`) cuts from the account's every membership.

use roster::domain::list::{PageRequest, paginate, text_key};
use roster::domain::types::{MemberOrder, now};
use roster::domain::{
    Account, AccountSettings, AccountType, Change, Direction, Email, Focus, Grants, Id, Membership,
    Status, User, catalog,
};
use roster::store::MemberQuery;

use crate::helpers::*;

/// Names chosen to disagree between byte order and case-insensitive order, with accents,
/// a German sharp s, an empty name and none at all.
const FIRST_NAMES: [Option<&str>; 8] = [
    Some("zoë"),
    Some("Zed"),
    Some("élodie"),
    Some("Émile"),
    Some("straße"),
    Some(""),
    None,
    Some("adam"),
];

fn user(n: usize) -> User {
    User {
        id: Id::generate(),
        email: Email::parse(&format!("Member{n:02}@Example.com"), "email").unwrap(),
        first_name: FIRST_NAMES[n % FIRST_NAMES.len()].map(String::from),
        last_name: FIRST_NAMES[(n * 3 + 1) % FIRST_NAMES.len()].map(String::from),
        telephone: None,
        country: None,
        zipcode: None,
        two_factor_authentication_enabled: false,
        created_on: now(),
        modified_on: now(),
    }
}

/// A new standard account with no member, made in the store directly.
async fn empty_account(store: &dyn roster::store::Store, name: &str) -> Account {
    let account = Account {
        id: Id::generate(),
        name: name.into(),
        account_type: AccountType::Standard,
        created_on: now(),
        settings: AccountSettings::default(),
        managed_by: None,
    };
    store.create_account(&account, None).await.unwrap();
    account
}

#[tokio::test]
async fn members_pages_are_the_reference_pages_on_each_backend() {
    let server = TestServer::start().await;
    let store = &server.store;
    let account = empty_account(store.as_ref(), "Pages").await;
    let statuses = [Status::Accepted, Status::Pending, Status::Rejected];
    let members: Vec<Membership> = (0..29)
        .map(|n| Membership {
            id: Id::generate(),
            account_id: account.id.clone(),
            email: Email::parse(&format!("Member{n:02}@Example.com"), "email").unwrap(),
            status: statuses[n % 3],
            grants: Grants::Roles(vec![Id::parse(catalog::SUPER_ADMINISTRATOR).unwrap()]),
            code: format!("{n:032x}"),
            api_access_enabled: None,
            created_on: now(),
            modified_on: now(),
            groups: Vec::new(),
            user: None,
        })
        .collect();
    // Most members have a user (whose names a pending invitee does not show), a few not.
    for n in (0..29).filter(|n| n % 7 != 5) {
        store.insert_user(&user(n), &"0".repeat(64)).await.unwrap();
    }
    store
        .write_account(&account.id, &Focus::default(), &|_| {
            Ok(members.iter().cloned().map(Change::PutMembership).collect())
        })
        .await
        .unwrap();
    let everyone = store
        .load_account(&account.id, &Focus::everyone())
        .await
        .unwrap()
        .unwrap()
        .members;
    assert_eq!(everyone.len(), 29);

    let name = |m: &Membership, first: bool| -> Option<String> {
        let user = m.visible_user()?;
        if first {
            user.first_name.clone()
        } else {
            user.last_name.clone()
        }
    };
    let orders = [
        None,
        Some(MemberOrder::Email),
        Some(MemberOrder::FirstName),
        Some(MemberOrder::LastName),
        Some(MemberOrder::Status),
    ];
    let mut pages = 0;
    for order in orders {
        for direction in [Direction::Asc, Direction::Desc] {
            for status in [None, Some(Status::Accepted), Some(Status::Pending)] {
                for page in 1..=6 {
                    let request = PageRequest::new(Some(page), Some(7)).unwrap();
                    let wanted: Vec<Membership> = everyone
                        .iter()
                        .filter(|m| status.is_none_or(|s| m.status == s))
                        .cloned()
                        .collect();
                    let reference = paginate(
                        wanted,
                        request,
                        direction,
                        |m| match order {
                            None => (true, String::new()),
                            Some(MemberOrder::Email) => text_key(Some(m.email.folded())),
                            Some(MemberOrder::FirstName) => text_key(name(m, true).as_deref()),
                            Some(MemberOrder::LastName) => text_key(name(m, false).as_deref()),
                            Some(MemberOrder::Status) => text_key(Some(m.status.as_str())),
                        },
                        |m| m.id.as_str(),
                    );
                    let query = MemberQuery {
                        status,
                        order,
                        direction,
                        page: request,
                    };
                    let read = store
                        .member_page(&account.id, None, &query)
                        .await
                        .unwrap()
                        .unwrap();
                    let ids = |items: &[Membership]| -> Vec<String> {
                        items.iter().map(|m| m.id.as_str().to_string()).collect()
                    };
                    let at = format!("{order:?} {direction:?} {status:?} page {page}");
                    assert_eq!(ids(&read.page.items), ids(&reference.items), "{at}");
                    assert_eq!(read.page.total_count, reference.total_count, "{at}");
                    // Each member with their user, as the reference has them.
                    for (got, want) in read.page.items.iter().zip(&reference.items) {
                        assert_eq!(
                            got.user.as_ref().map(|u| &u.id),
                            want.user.as_ref().map(|u| &u.id),
                            "{at}"
                        );
                    }
                    pages += 1;
                }
            }
        }
    }
    assert_eq!(pages, 5 * 2 * 3 * 6);
}

/// A user's memberships page, without HTTP: in every order and direction, with and without
/// the status and account-name filters, the page the store cuts is the one cut from the
/// user's every membership (`OwnMembershipQuery::page_of`), on each backend, past the number
/// SQLite pages in memory; and the kept count follows accepts, rejections, removals, an
/// account's deletion and an import.
#[tokio::test]
async fn a_users_memberships_pages_are_the_reference_pages_on_each_backend() {
    use roster::domain::types::MembershipOrder;
    use roster::store::OwnMembershipQuery;

    let server = TestServer::start().await;
    let store = &server.store;
    let email = Email::parse("Many@Example.com", "email").unwrap();
    // Names that sort apart from ids and bytes, some shared (a tie broken by id).
    let names = [
        "Zeta", "alpha", "Ärger", "beta", "Alpha", "straße", "émile", "Émile",
    ];
    let statuses = [Status::Accepted, Status::Pending, Status::Rejected];
    let mut accounts = Vec::new();
    for n in 0..130 {
        let account = empty_account(store.as_ref(), names[n % names.len()]).await;
        let membership = Membership {
            id: Id::generate(),
            account_id: account.id.clone(),
            email: email.clone(),
            status: statuses[(n / 3) % 3],
            grants: Grants::Roles(vec![Id::parse(catalog::SUPER_ADMINISTRATOR).unwrap()]),
            code: format!("{n:032x}"),
            api_access_enabled: None,
            created_on: now(),
            modified_on: now(),
            groups: Vec::new(),
            user: None,
        };
        store
            .write_account(&account.id, &Focus::default(), &|_| {
                Ok(vec![Change::PutMembership(membership.clone())])
            })
            .await
            .unwrap();
        accounts.push((account, membership));
    }
    let ids = |items: &[std::sync::Arc<roster::store::UserMembership>]| -> Vec<String> {
        items
            .iter()
            .map(|m| m.membership.id.as_str().to_string())
            .collect()
    };
    let compare = |label: String| {
        let store = store.clone();
        async move {
            let everything = store.user_memberships(email_folded()).await.unwrap();
            let mut compared = 0;
            for order in [
                MembershipOrder::Id,
                MembershipOrder::AccountName,
                MembershipOrder::Status,
            ] {
                for direction in [Direction::Asc, Direction::Desc] {
                    for status in [None, Some(Status::Accepted), Some(Status::Rejected)] {
                        for account_names in [
                            vec![],
                            vec!["ALPHA".to_string()],
                            vec!["émile".into(), "ÉMILE".into()],
                        ] {
                            for page in [1, 2, 7, 40] {
                                let query = OwnMembershipQuery {
                                    status,
                                    account_names: account_names.clone(),
                                    order,
                                    direction,
                                    page: PageRequest::new(Some(page), Some(5)).unwrap(),
                                };
                                let reference = query.page_of(&everything);
                                let read = store
                                    .user_membership_page(email_folded(), &query)
                                    .await
                                    .unwrap();
                                let at = format!("{label}: {query:?}");
                                assert_eq!(ids(&read.items), ids(&reference.items), "{at}");
                                assert_eq!(read.total_count, reference.total_count, "{at}");
                                for (got, want) in read.items.iter().zip(&reference.items) {
                                    assert_eq!(got.account.name, want.account.name, "{at}");
                                }
                                compared += 1;
                            }
                        }
                    }
                }
            }
            assert_eq!(compared, 3 * 2 * 3 * 3 * 4);
            everything.len()
        }
    };
    assert_eq!(compare("as made".into()).await, 130);

    // Changes of status, a removal and an account's deletion (its memberships go with it,
    // by the database's cascade): the kept counts follow each.
    let (first, m) = &accounts[0];
    let mut accepted = m.clone();
    accepted.status = Status::Rejected;
    store
        .write_account(&first.id, &Focus::default(), &|_| {
            Ok(vec![Change::PutMembership(accepted.clone())])
        })
        .await
        .unwrap();
    let (second, m) = &accounts[1];
    let gone = m.id.clone();
    store
        .write_account(&second.id, &Focus::default(), &|_| {
            Ok(vec![Change::DeleteMembership(gone.clone())])
        })
        .await
        .unwrap();
    let (third, _) = &accounts[2];
    store
        .write_account(&third.id, &Focus::default(), &|_| {
            Ok(vec![Change::DeleteAccount])
        })
        .await
        .unwrap();
    assert_eq!(compare("after changes".into()).await, 128);

    // An export imported again in place of everything: counted again from the rows.
    let exported = store.export().await.unwrap();
    store.restore(&exported).await.unwrap();
    assert_eq!(compare("after a restore".into()).await, 128);
}

/// A token list's page, without HTTP: with and without expired tokens, in each direction,
/// the page the store cuts is the one cut from the owner's every token
/// (`TokenQuery::page_of`), on each backend; tokens that expire while listed, tokens
/// disabled past their expiry (still listed), deletions, an account's tokens going with
/// it, a restore and more expired tokens than a statement leaves out keep it so.
#[tokio::test]
async fn token_pages_are_the_reference_pages_on_each_backend() {
    use roster::domain::tokens::{self, Owner, TokenStatus};
    use roster::store::TokenQuery;
    use time::OffsetDateTime;

    let server = TestServer::start().await;
    let store = &server.store;
    let owner = user(1);
    store.insert_user(&owner, &"0".repeat(64)).await.unwrap();
    let group = catalog::permission_group_named("Memberships Read")
        .unwrap()
        .id
        .clone();
    let now = OffsetDateTime::now_utc();
    let at = |hours: i64| roster::domain::types::timestamp(now + time::Duration::hours(hours));
    // Issued at times that repeat (ties broken by id) and some with fractions of a second.
    let issued = [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.5Z",
        "2025-06-01T12:00:00Z",
        "2026-01-01T00:00:00Z",
    ];
    let mut ids = Vec::new();
    for n in 0..43 {
        let mut token =
            tokens::simple_token(&owner.id, format!("t{n}"), vec![group.clone()], None).unwrap();
        token.issued_on = issued[n % issued.len()].to_string();
        // Past, near future, far future and no expiry; some disabled, some marked expired.
        token.expires_on = match n % 5 {
            0 => Some(at(-2)),
            1 => Some(at(1)),
            2 => Some(at(1000)),
            _ => None,
        };
        token.status = match n % 7 {
            3 => TokenStatus::Disabled,
            5 => TokenStatus::Expired,
            _ => TokenStatus::Active,
        };
        store
            .insert_token(&token, &format!("{n:064x}"), None)
            .await
            .unwrap();
        ids.push(token.id.clone());
    }
    let owned = Owner::User(owner.id.clone());
    let compare = |label: &'static str, hours: i64| {
        let (store, owned) = (store.clone(), owned.clone());
        async move {
            let mut compared = 0;
            for include_expired in [false, true] {
                for direction in [Direction::Asc, Direction::Desc] {
                    for page in [1, 2, 3, 9] {
                        let query = TokenQuery {
                            include_expired,
                            at: now + time::Duration::hours(hours),
                            direction,
                            page: PageRequest::new(Some(page), Some(5)).unwrap(),
                        };
                        let reference = query.page_of(store.tokens(&owned).await.unwrap());
                        let read = store.token_page(&owned, &query).await.unwrap();
                        let names = |p: &roster::domain::list::Page<tokens::Token>| {
                            p.items.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
                        };
                        let at = format!("{label}: {query:?}");
                        assert_eq!(names(&read), names(&reference), "{at}");
                        assert_eq!(read.total_count, reference.total_count, "{at}");
                        compared += 1;
                    }
                }
            }
            assert_eq!(compared, 16);
        }
    };
    compare("now", 0).await;
    // Two hours on, the near-future expiries have passed too.
    compare("later", 2).await;
    for id in &ids[..4] {
        store.delete_token(&owned, id, None).await.unwrap();
    }
    compare("after deletions", 0).await;
    // An account's tokens are counted apart from a user's, and go with the account.
    let account = empty_account(store.as_ref(), "Tokens").await;
    let account_owned = Owner::Account(account.id.clone());
    let settings = catalog::permission_group_named("Account Settings Read")
        .unwrap()
        .id
        .clone();
    for n in 0..6 {
        let mut token =
            tokens::simple_account_token(&account.id, format!("a{n}"), vec![settings.clone()])
                .unwrap();
        token.expires_on = (n % 2 == 0).then(|| at(-1));
        store
            .insert_token(&token, &format!("{:064x}", 1000 + n), None)
            .await
            .unwrap();
    }
    let every = |include_expired| TokenQuery {
        include_expired,
        at: now,
        direction: Direction::Asc,
        page: PageRequest::new(Some(1), Some(5)).unwrap(),
    };
    let total = |owned: Owner, include_expired| {
        let store = store.clone();
        async move {
            store
                .token_page(&owned, &every(include_expired))
                .await
                .unwrap()
                .total_count
        }
    };
    assert_eq!(total(account_owned.clone(), true).await, 6);
    assert_eq!(total(account_owned.clone(), false).await, 3);
    assert_eq!(total(owned.clone(), true).await, 39);
    // Restored from an export: counted again from the rows.
    let exported = store.export().await.unwrap();
    store.restore(&exported).await.unwrap();
    assert_eq!(total(account_owned.clone(), true).await, 6);
    compare("after a restore", 0).await;
    store
        .write_account(&account.id, &Focus::default(), &|_| {
            Ok(vec![Change::DeleteAccount])
        })
        .await
        .unwrap();
    assert_eq!(total(account_owned.clone(), true).await, 0);
    assert_eq!(total(owned.clone(), true).await, 39);

    // More expired tokens than a page leaves out by id: the same page, read whole.
    for n in 0..1005 {
        let mut token =
            tokens::simple_token(&owner.id, format!("x{n:04}"), vec![group.clone()], None).unwrap();
        token.status = TokenStatus::Expired;
        token.issued_on = "2024-01-01T00:00:00Z".into();
        store
            .insert_token(&token, &format!("{:064x}", 5000 + n), None)
            .await
            .unwrap();
    }
    compare("with many expired", 0).await;
    assert_eq!(total(owned.clone(), true).await, 39 + 1005);
}

fn email_folded() -> &'static str {
    "many@example.com"
}

/// The one-live-membership rule's second layer on its own: a write that skips the domain's
/// check (as a bug in a handler would) is refused by the database's unique index, on each
/// backend, whatever the case of the email; a rejected membership does not count.
#[tokio::test]
async fn the_index_keeps_one_live_membership_per_email_without_the_domain() {
    let server = TestServer::start().await;
    let store = &server.store;
    let account = empty_account(store.as_ref(), "Index").await;
    let membership = |email: &str, status| Membership {
        id: Id::generate(),
        account_id: account.id.clone(),
        email: Email::parse(email, "email").unwrap(),
        status,
        grants: Grants::Roles(vec![Id::parse(catalog::SUPER_ADMINISTRATOR).unwrap()]),
        code: format!("{:032x}", 7),
        api_access_enabled: None,
        created_on: now(),
        modified_on: now(),
        groups: Vec::new(),
        user: None,
    };
    let put = |m: Membership| {
        let (store, id) = (store.clone(), account.id.clone());
        async move {
            store
                .write_account(&id, &Focus::default(), &|_| {
                    Ok(vec![Change::PutMembership(m.clone())])
                })
                .await
        }
    };
    put(membership("twice@example.com", Status::Rejected))
        .await
        .unwrap();
    put(membership("twice@example.com", Status::Pending))
        .await
        .unwrap();
    let refused = put(membership("TWICE@example.com", Status::Accepted)).await;
    assert!(
        matches!(
            refused,
            Err(roster::store::StoreError::Domain(
                roster::domain::DomainError::AlreadyMember(_)
            ))
        ),
        "{refused:?}"
    );
    let everyone = store
        .load_account(&account.id, &Focus::everyone())
        .await
        .unwrap()
        .unwrap()
        .members;
    assert_eq!(everyone.len(), 2, "the refused write left nothing");
}
