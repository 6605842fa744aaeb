//! End-to-end journeys live in `tests/`; this library is empty.
