//! Paging and ordering rules shared by every list: `page` >= 1, `per_page` in 5..=50,
//! ties broken by id so that consecutive pages never overlap or skip.

use super::DomainError;
use super::types::Direction;

pub const PER_PAGE_MIN: u32 = 5;
pub const PER_PAGE_MAX: u32 = 50;
pub const PER_PAGE_DEFAULT: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            page: 1,
            per_page: PER_PAGE_DEFAULT,
        }
    }
}

impl PageRequest {
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Result<Self, DomainError> {
        let page = page.unwrap_or(1);
        if page < 1 {
            return Err(DomainError::invalid("page", "page must be 1 or greater"));
        }
        let per_page = per_page.unwrap_or(PER_PAGE_DEFAULT);
        if !(PER_PAGE_MIN..=PER_PAGE_MAX).contains(&per_page) {
            return Err(DomainError::invalid(
                "per_page",
                format!("per_page must be between {PER_PAGE_MIN} and {PER_PAGE_MAX}"),
            ));
        }
        Ok(PageRequest { page, per_page })
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
        self.total_count.div_ceil(self.request.per_page as usize)
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
