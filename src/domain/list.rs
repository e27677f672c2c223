//! Paging and ordering rules shared by every list: `page` >= 1, `per_page` within the
//! list's own documented bounds, ties broken by id so that consecutive pages never overlap
//! or skip.

use super::DomainError;
use super::types::Direction;

/// One list's documented `per_page` bounds and default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerPage {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

/// The 2024 schema's bounds, which Cloudflare's reference keeps for accounts, members,
/// memberships, roles, permission and resource groups, and both kinds of token.
pub const SCHEMA_PER_PAGE: PerPage = PerPage {
    min: 5,
    max: 50,
    default: 20,
};

/// User groups and a group's members: Cloudflare's reference allows 1 to 500 (and gives
/// no default, so the schema's is kept).
pub const USER_GROUPS_PER_PAGE: PerPage = PerPage {
    min: 1,
    max: 500,
    default: 20,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            page: 1,
            per_page: SCHEMA_PER_PAGE.default,
        }
    }
}

impl PageRequest {
    /// A page within the schema's bounds.
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Result<Self, DomainError> {
        PageRequest::within(page, per_page, SCHEMA_PER_PAGE)
    }

    /// A page within `bounds`.
    pub fn within(
        page: Option<u32>,
        per_page: Option<u32>,
        bounds: PerPage,
    ) -> Result<Self, DomainError> {
        let page = page.unwrap_or(1);
        if page < 1 {
            return Err(DomainError::invalid("page", "page must be 1 or greater"));
        }
        let per_page = per_page.unwrap_or(bounds.default);
        if !(bounds.min..=bounds.max).contains(&per_page) {
            return Err(DomainError::invalid(
                "per_page",
                format!("per_page must be between {} and {}", bounds.min, bounds.max),
            ));
        }
        Ok(PageRequest { page, per_page })
    }

    /// One page holding all `count` items, for a list read without paging parameters that
    /// the SDKs read as a single page.
    pub fn whole(count: usize) -> Self {
        PageRequest {
            page: 1,
            per_page: u32::try_from(count).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub request: PageRequest,
    pub total_count: usize,
}

impl<T> Page<T> {
    pub fn total_pages(&self) -> usize {
        match self.request.per_page {
            // Only a whole list of nothing has pages of nothing: there are none.
            0 => 0,
            per_page => self.total_count.div_ceil(per_page as usize),
        }
    }
}

/// Orders `items` by `key` then by `id` (both in `direction`), and cuts out one page. A page
/// past the end is empty, not an error.
pub fn paginate<T, K: Ord>(
    mut items: Vec<T>,
    request: PageRequest,
    direction: Direction,
    key: impl Fn(&T) -> K,
    id: impl Fn(&T) -> &str,
) -> Page<T> {
    // Keys may allocate (folded text), so each is computed once.
    items.sort_by_cached_key(|item| (key(item), id(item).to_string()));
    page_in_order(items, request, direction)
}

/// One page of `items` that are already in [`paginate`]'s ascending order, cut out as it
/// cuts it: the same page, without computing and sorting every item's key again.
pub fn page_in_order<T>(mut items: Vec<T>, request: PageRequest, direction: Direction) -> Page<T> {
    if direction == Direction::Desc {
        items.reverse();
    }
    let total_count = items.len();
    let start = (request.page as usize - 1).saturating_mul(request.per_page as usize);
    let items = items
        .into_iter()
        .skip(start)
        .take(request.per_page as usize)
        .collect();
    Page {
        items,
        request,
        total_count,
    }
}

/// Name filters compare case-insensitively, as account names are shown to people.
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Sort key for optional text: missing values sort first, case does not matter.
pub fn text_key(value: Option<&str>) -> (bool, String) {
    (value.is_some(), value.unwrap_or_default().to_lowercase())
}
