//! An in-process fleet toolkit for tests (and for users testing their processors): a
//! [`Fleet`] of workers over an embedded broker and one lease table, recording
//! processors, pass-through [`hooks`] around a real stream client and lease store (faults on
//! demand), pausable I/O, and a [`validate`] function that checks
//! delivery guarantees from a list of observations.

pub mod fleet;
pub mod hooks;
pub mod pausable;
pub mod recording;
pub mod validator;

pub use fleet::{Fleet, FleetConfig};
pub use recording::{
    FaultPlan, HoldPlan, ObservationLog, RecordingProcessor, RecordingProcessorFactory,
};
pub use validator::{
    Observation, ObservationKind, ProducedRecord, ValidationReport, ValidationRules, validate,
};
