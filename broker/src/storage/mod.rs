//! Durable storage for the broker (work in progress).
