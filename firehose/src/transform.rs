//! The Lambda transformation contract over a local command.
