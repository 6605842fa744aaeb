//! Shared HTTP layer: problem+json errors, JSON extractor, request ids, pagination, idempotency, OpenAPI
