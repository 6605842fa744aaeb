//! Cursor pagination: `?limit=` (1 to 100, default 20) and `?cursor=`, answered as
//! `{"items": [...], "nextCursor": "..." | null}`.

use amanar_core::table::{Cursor, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::ApiError;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The paging parameters of a list request.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated `?limit=`: 1 to 100, 20 when absent.
pub fn limit(requested: Option<u32>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as u32).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::validation(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Validated paging parameters.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl PageParams {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let limit = limit(self.limit)?;
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(Cursor::parse(text).map_err(ApiError::from)?),
        };
        Ok(PageRequest { limit, cursor })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A page of already-converted items and the table cursor of the next one.
    pub fn new(items: Vec<T>, next: Option<Cursor>) -> Self {
        List {
            items,
            next_cursor: next.map(|c| c.as_str().to_owned()),
        }
    }

    /// Converts a table page, mapping each stored item to its wire form.
    pub fn from_page(
        page: Page,
        convert: impl FnMut(amanar_core::Item) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let items = page
            .items
            .into_iter()
            .map(convert)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(List::new(items, page.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_a_hundred_and_foreign_cursors_are_refused() {
        let params = |limit, cursor: Option<&str>| PageParams {
            limit,
            cursor: cursor.map(str::to_owned),
        };
        assert_eq!(params(None, None).validate().unwrap().limit, 20);
        assert_eq!(params(Some(100), None).validate().unwrap().limit, 100);
        assert!(params(Some(0), None).validate().is_err());
        assert!(params(Some(101), None).validate().is_err());
        assert!(
            matches!(params(None, Some("garbage!")).validate(), Err(ApiError::Validation(e)) if e[0].field == "cursor")
        );
    }
}
