//! The autopilot: observes the volume's health, plans bounded actions by conservative
//! rules, and (unless asked for a dry run) performs exactly that plan through the same
//! maintenance requests `argosfs-disk` and `argosfs-scrub` use, offline or through the
//! mount. Every run leaves an artifact (inputs, plan, results) that `--replay` can
//! recompute the plan from.

pub mod execute;
pub mod inputs;
pub mod observe;
pub mod plan;
pub mod record;

pub use inputs::{DiskSeen, Inputs, Memory, Observation, Policy, SmartReading};
pub use plan::{Action, Finding, Plan, Severity, Step, plan};

#[cfg(test)]
mod scenarios;
