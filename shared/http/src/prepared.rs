//! Response bodies made once per process. A document that depends only on what is compiled in
//! (the unit list, the OpenAPI document, the reference page) is serialised on its first request,
//! and every later response shares those bytes instead of building and serialising it again.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

/// One prepared body. Declare it `static` beside its handler.
pub struct Prepared(OnceLock<Bytes>);

impl Prepared {
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// `make`'s value as JSON, serialised on the first call.
    pub fn json<T: Serialize>(&'static self, make: impl FnOnce() -> T) -> Response {
        let body = self.0.get_or_init(|| {
            serde_json::to_vec(&make())
                .expect("a compiled-in document serialises")
                .into()
        });
        respond("application/json", body)
    }

    /// `make`'s text with `content_type`, made on the first call.
    pub fn text(
        &'static self,
        content_type: &'static str,
        make: impl FnOnce() -> String,
    ) -> Response {
        respond(content_type, self.0.get_or_init(|| make().into()))
    }
}

impl Default for Prepared {
    fn default() -> Self {
        Self::new()
    }
}

fn respond(content_type: &'static str, body: &Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    static DOC: Prepared = Prepared::new();

    #[tokio::test]
    async fn a_prepared_body_is_made_once_and_served_every_time() {
        let made = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let response = DOC.json(|| {
                made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                serde_json::json!({"items": [1, 2]})
            });
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(&body[..], br#"{"items":[1,2]}"#);
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
