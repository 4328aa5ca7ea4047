//! `kcl worker --exec CMD`: the KCL MultiLangDaemon protocol, so record processors written for
//! the Java KCL's MultiLangDaemon (Python `amazon_kclpy`, Node `aws-kcl`, ...) run unchanged.
//!
//! - [`messages`]: the JSON-lines codec.
//! - [`child`]: one child process per shard, driven one action at a time.

pub mod child;
pub mod messages;

pub use child::{
    CheckpointOutcome, CheckpointRequests, ChildCommand, ChildProcess, MultiLangError,
    RefuseCheckpoints,
};
pub use messages::{ChildMessage, DaemonMessage, ProtocolRecord};
