//! Performing a plan: each step becomes the maintenance request `argosfs-disk` or
//! `argosfs-scrub` would send, performed by whoever the caller gives (this process on
//! the volume it opened, or the mount through its control socket). Exactly the plan
//! that was shown runs, in its order; the byte budget is shared: each data-moving step
//! gets what the earlier ones left.

use super::plan::{Action, Plan, Step};
use super::record::StepResult;
use crate::maint::Bounds;
use crate::maint::action::{Outcome, Request, ScrubOutcome};
use crate::maint::scrub::ScrubOptions;
use crate::volume::DiskState;

/// The request a step is performed with, `budget` bytes left for it.
pub fn request_of(action: &Action, budget: Option<u64>) -> Request {
    let bounds = Bounds {
        max_bytes: budget,
        rate: None,
    };
    match &action.step {
        Step::Scrub { percent } => Request::Scrub(ScrubOptions {
            repair: true,
            percent: Some(*percent),
            ..ScrubOptions::default()
        }),
        Step::MarkFailed { disk } => Request::SetState {
            disk: *disk,
            state: DiskState::Failed,
            reason: format!("autopilot: {}", action.trigger.join("; ")),
        },
        Step::Heal => Request::Heal { bounds },
        Step::Drain { disk } => Request::Drain {
            disk: *disk,
            bounds,
            forget: false,
        },
        Step::Rebalance => Request::Rebalance { bounds },
    }
}

/// Shard bytes an outcome says were written, whether the step left its work whole, and
/// a line on what it did.
fn summary(outcome: &Outcome) -> (u64, String) {
    match outcome {
        Outcome::Ran(r)
        | Outcome::Drained { report: r, .. }
        | Outcome::Replaced { heal: Some(r), .. } => (
            r.bytes_written,
            format!(
                "{} stripes done, {} shards ({} bytes) written, {} stripes left",
                r.stripes_done, r.shards_written, r.bytes_written, r.stripes_left
            ),
        ),
        Outcome::Scrub(ScrubOutcome::Ran(r)) => (
            0,
            format!(
                "{} stripes verified, {} bad shards found, {} repaired, {} left",
                r.stripes_verified,
                r.found.total(),
                r.shards_repaired,
                r.shards_left
            ),
        ),
        Outcome::StateSet { disk, state, .. } => (0, format!("{disk} is now {state:?}")),
        _ => (0, "done".into()),
    }
}

/// Performs every step of `plan` in order with `perform`, calling `done` after each.
pub fn execute(
    plan: &Plan,
    perform: &mut dyn FnMut(&Request) -> Result<Outcome, String>,
    done: &mut dyn FnMut(&StepResult),
) -> Vec<StepResult> {
    let mut spent = 0u64;
    let mut results = Vec::new();
    for action in &plan.actions {
        let budget = action.max_bytes.map(|max| max.saturating_sub(spent));
        let request = request_of(action, budget);
        let result = match perform(&request) {
            Ok(outcome) => {
                let (bytes, detail) = summary(&outcome);
                spent += bytes;
                StepResult {
                    step: action.step.clone(),
                    is_ok: true,
                    bytes_written: bytes,
                    detail,
                    report: serde_json::to_value(&outcome).unwrap_or_default(),
                }
            }
            Err(why) => StepResult {
                step: action.step.clone(),
                is_ok: false,
                bytes_written: 0,
                detail: why,
                report: serde_json::Value::Null,
            },
        };
        done(&result);
        results.push(result);
    }
    results
}
