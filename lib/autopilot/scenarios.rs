//! The planner's scenario matrix: each scenario builds inputs and states the plan the
//! rules must give (the steps, in order, and what must or must not be found). Executed
//! scenarios on real volumes are in tests/autopilot.rs.

use super::inputs::{DiskMemory, DiskSeen, Inputs, Memory, Observation, Policy, SmartReading};
use super::plan::{Plan, Severity, Step};
use crate::types::DiskId;
use crate::volume::DiskState;

const NOW: u64 = 1_800_000_000;
const GIB: u64 = 1 << 30;

fn disk(i: u16) -> DiskSeen {
    DiskSeen {
        id: DiskId(i),
        domain: format!("disk{i}"),
        weight: 1.0,
        state: DiskState::Active,
        is_available: true,
        has_failed_write: false,
        shards: 1000,
        shard_bytes: 10 * GIB,
        degraded_stripes: 0,
        total_bytes: 100 * GIB,
        free_bytes: 80 * GIB,
        smart: None,
        read_p99_us: Some(2_000.0),
        errors: 0,
    }
}

/// A healthy 4+2 volume on `n` disks, scrubbed a day ago.
fn volume(n: u16) -> Inputs {
    Inputs {
        observation: Observation {
            now_unix: NOW,
            k: 4,
            m: 2,
            min_shards: 5,
            stripes: 1000,
            degraded_stripes: 0,
            metadata_problem: None,
            oldest_scrub_unix: Some(NOW - 86_400),
            disks: (0..n).map(disk).collect(),
        },
        memory: Memory::default(),
        policy: Policy::default(),
    }
}

fn lose(inputs: &mut Inputs, i: usize, since: Option<u64>) {
    let d = &mut inputs.observation.disks[i];
    d.is_available = false;
    d.total_bytes = 0;
    d.free_bytes = 0;
    d.degraded_stripes = d.shards;
    inputs.observation.degraded_stripes += d.shards;
    if let Some(since) = since {
        memory_of(inputs, i).unavailable_since_unix = Some(since);
    }
}

fn memory_of(inputs: &mut Inputs, i: usize) -> &mut DiskMemory {
    let id = inputs.observation.disks[i].id;
    inputs.memory.disks.entry(id).or_insert(DiskMemory {
        unavailable_since_unix: None,
        availability: Vec::new(),
        bad_sectors: Vec::new(),
        slow_runs: 0,
    })
}

fn smart(pending: u64) -> SmartReading {
    SmartReading {
        passed: Some(true),
        pending_sectors: Some(pending),
        reallocated_sectors: Some(0),
        ..SmartReading::default()
    }
}

/// The plan for `inputs`, checked to be what a replay of the run's artifact gives: the
/// inputs written as JSON and read back plan the same (every scenario is replayed).
fn plan(inputs: &Inputs) -> Plan {
    let planned = super::plan::plan(inputs);
    let saved: Inputs = serde_json::from_str(&serde_json::to_string(inputs).unwrap()).unwrap();
    assert_eq!(saved, *inputs, "the inputs do not survive the artifact");
    assert_eq!(super::plan::plan(&saved), planned, "the replay differs");
    planned
}

fn steps(inputs: &Inputs) -> Vec<Step> {
    plan(inputs).actions.into_iter().map(|a| a.step).collect()
}

fn has_finding(inputs: &Inputs, severity: Severity, text: &str) -> bool {
    plan(inputs)
        .findings
        .iter()
        .any(|f| f.severity == severity && f.text.contains(text))
}

#[test]
fn s01_healthy_volume_observes_only() {
    let v = volume(6);
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(p.refused.is_none());
    assert_eq!(p.worst(), Some(Severity::Info));
}

#[test]
fn s02_never_scrubbed_volume_is_scrubbed() {
    let mut v = volume(6);
    v.observation.oldest_scrub_unix = None;
    assert_eq!(steps(&v), vec![Step::Scrub { percent: 100.0 }]);
}

#[test]
fn s03_scrub_due_after_a_week() {
    let mut v = volume(6);
    v.observation.oldest_scrub_unix = Some(NOW - 8 * 86_400);
    assert_eq!(steps(&v), vec![Step::Scrub { percent: 100.0 }]);
    v.observation.oldest_scrub_unix = Some(NOW - 6 * 86_400);
    assert!(steps(&v).is_empty());
}

#[test]
fn s04_corrupt_metadata_refuses_everything() {
    let mut v = volume(6);
    v.observation.metadata_problem = Some("both snapshot slots fail their checksum".into());
    lose(&mut v, 1, Some(NOW - 10_000));
    let p = plan(&v);
    assert!(p.actions.is_empty());
    assert!(
        p.refused.as_deref().unwrap().contains("argosfs fsck"),
        "{p:?}"
    );
    assert_eq!(p.worst(), Some(Severity::Critical));
}

#[test]
fn s05_vanished_disk_is_waited_for_during_the_grace_period() {
    let mut v = volume(6);
    lose(&mut v, 2, Some(NOW - 60));
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(p.not_taken.iter().any(|t| t.contains("heal waits")));
    assert!(has_finding(&v, Severity::Warning, "waiting 600 s"));
}

#[test]
fn s06_vanished_disk_first_seen_now_is_waited_for() {
    let mut v = volume(6);
    lose(&mut v, 2, None);
    assert!(steps(&v).is_empty());
}

#[test]
fn s07_disk_gone_past_grace_is_marked_failed_and_healed() {
    let mut v = volume(6);
    lose(&mut v, 2, Some(NOW - 700));
    let p = plan(&v);
    assert_eq!(
        p.actions.iter().map(|a| a.step.clone()).collect::<Vec<_>>(),
        vec![Step::MarkFailed { disk: DiskId(2) }, Step::Heal]
    );
    assert!(p.actions[0].trigger[0].contains("700 s >= down_after 600 s"));
}

#[test]
fn s08_down_after_zero_acts_at_once() {
    let mut v = volume(6);
    v.policy.down_after_secs = 0;
    lose(&mut v, 4, None);
    assert_eq!(
        steps(&v),
        vec![Step::MarkFailed { disk: DiskId(4) }, Step::Heal]
    );
}

#[test]
fn s09_m_disks_gone_are_still_repaired() {
    let mut v = volume(8);
    v.policy.down_after_secs = 0;
    lose(&mut v, 1, None);
    lose(&mut v, 5, None);
    assert_eq!(
        steps(&v),
        vec![
            Step::MarkFailed { disk: DiskId(1) },
            Step::MarkFailed { disk: DiskId(5) },
            Step::Heal
        ]
    );
}

#[test]
fn s10_more_than_m_disks_gone_moves_nothing() {
    let mut v = volume(8);
    v.policy.down_after_secs = 0;
    for i in [0, 3, 6] {
        lose(&mut v, i, None);
    }
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(p.refused.as_deref().unwrap().contains("tolerates 2"));
}

#[test]
fn s11_degraded_stripes_from_degraded_writes_are_healed() {
    let mut v = volume(6);
    v.observation.degraded_stripes = 12;
    let p = plan(&v);
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].step, Step::Heal);
    assert!(p.actions[0].trigger[0].contains("12 stripes degraded"));
}

#[test]
fn s12_heal_impossible_with_too_few_writable_disks_is_critical() {
    let mut v = volume(6);
    v.observation.degraded_stripes = 5;
    for i in 0..2 {
        v.observation.disks[i].has_failed_write = true;
    }
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(p.worst(), Some(Severity::Critical));
}

#[test]
fn s13_one_bad_smart_reading_is_only_watched() {
    let mut v = volume(7);
    v.observation.disks[3].smart = Some(smart(8));
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(has_finding(&v, Severity::Warning, "without a trend"));
}

#[test]
fn s14_growing_bad_sectors_over_three_runs_drain_the_disk() {
    let mut v = volume(7);
    memory_of(&mut v, 3).bad_sectors = vec![0, 2, 9];
    v.observation.disks[3].smart = Some(smart(20));
    let p = plan(&v);
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].step, Step::Drain { disk: DiskId(3) });
    assert!(p.actions[0].trigger[0].contains("2 -> 9 -> 20"), "{p:?}");
}

#[test]
fn s15_a_trend_that_stopped_growing_is_not_a_trend() {
    let mut v = volume(7);
    memory_of(&mut v, 3).bad_sectors = vec![2, 9, 9];
    v.observation.disks[3].smart = Some(smart(9));
    assert!(steps(&v).is_empty());
}

#[test]
fn s16_hard_smart_failure_drains_at_once() {
    let mut v = volume(7);
    v.observation.disks[5].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    assert_eq!(steps(&v), vec![Step::Drain { disk: DiskId(5) }]);
}

#[test]
fn s17_failing_disk_that_cannot_be_drained_is_critical() {
    // Six disks, 4+2: no room for a stripe without the failing one.
    let mut v = volume(6);
    v.observation.disks[1].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(has_finding(&v, Severity::Critical, "cannot be drained"));
}

#[test]
fn s18_drain_that_would_leave_too_few_domains_is_refused() {
    // Seven disks but only five domains: draining one of a pair-less domain leaves 4.
    let mut v = volume(7);
    for (i, domain) in ["a", "a", "b", "b", "c", "d", "e"].iter().enumerate() {
        v.observation.disks[i].domain = domain.to_string();
    }
    v.observation.disks[6].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    let p = plan(&v);
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(
        p.not_taken.iter().any(|t| t.contains("min_shards")),
        "{p:?}"
    );
}

#[test]
fn s19_two_failing_disks_drain_one_per_run() {
    let mut v = volume(9);
    for i in [2, 6] {
        v.observation.disks[i].smart = Some(SmartReading {
            passed: Some(false),
            ..SmartReading::default()
        });
    }
    assert_eq!(steps(&v), vec![Step::Drain { disk: DiskId(2) }]);
    assert!(
        plan(&v)
            .not_taken
            .iter()
            .any(|t| t.contains("one drain per run"))
    );
}

#[test]
fn s20_flapping_disk_is_drained() {
    let mut v = volume(7);
    memory_of(&mut v, 4).availability = vec![true, false, true, false];
    assert_eq!(steps(&v), vec![Step::Drain { disk: DiskId(4) }]);
    let mut calm = volume(7);
    memory_of(&mut calm, 4).availability = vec![true, true, false, true];
    assert!(steps(&calm).is_empty());
}

#[test]
fn s21_new_empty_disk_is_rebalanced_onto() {
    let mut v = volume(7);
    v.observation.disks[6].shards = 0;
    v.observation.disks[6].shard_bytes = 0;
    let p = plan(&v);
    assert_eq!(p.actions.len(), 1, "{p:?}");
    assert_eq!(p.actions[0].step, Step::Rebalance);
}

#[test]
fn s22_rebalance_waits_for_repair() {
    let mut v = volume(7);
    v.observation.disks[6].shard_bytes = 0;
    v.observation.degraded_stripes = 3;
    assert_eq!(steps(&v), vec![Step::Heal]);
    assert!(plan(&v).not_taken.iter().any(|t| t.contains("rebalance")));
}

#[test]
fn s23_full_disk_triggers_rebalance() {
    let mut v = volume(6);
    v.observation.disks[0].free_bytes = GIB;
    let p = plan(&v);
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].step, Step::Rebalance);
    assert!(p.actions[0].trigger[0].contains("headroom"));
}

#[test]
fn s24_hot_disk_holding_more_than_its_share_is_rebalanced() {
    let mut v = volume(6);
    v.observation.disks[2].shard_bytes = 25 * GIB;
    assert_eq!(steps(&v), vec![Step::Rebalance]);
}

#[test]
fn s25_weights_set_the_share() {
    let mut v = volume(6);
    v.observation.disks[0].weight = 2.0;
    v.observation.disks[0].shard_bytes = 20 * GIB;
    assert!(
        steps(&v).is_empty(),
        "a disk of weight 2 holds twice as much"
    );
}

#[test]
fn s26_slow_disk_is_reported_after_two_runs_and_moves_nothing() {
    let mut v = volume(6);
    v.observation.disks[1].read_p99_us = Some(50_000.0);
    assert!(steps(&v).is_empty());
    assert!(!has_finding(&v, Severity::Warning, "median"));
    memory_of(&mut v, 1).slow_runs = 1;
    assert!(steps(&v).is_empty());
    assert!(has_finding(&v, Severity::Warning, "median"));
}

#[test]
fn s27_budget_defaults_to_five_percent_of_stored_bytes() {
    let mut v = volume(6);
    v.observation.degraded_stripes = 1;
    let p = plan(&v);
    assert_eq!(p.budget_bytes, 60 * GIB / 100 * 5);
    assert_eq!(p.actions[0].max_bytes, Some(p.budget_bytes));
}

#[test]
fn s28_a_given_budget_bounds_every_data_move() {
    let mut v = volume(7);
    v.policy.budget_bytes = Some(1 << 20);
    v.observation.disks[2].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    v.observation.degraded_stripes = 4;
    let p = plan(&v);
    assert_eq!(
        p.actions.iter().map(|a| &a.step).collect::<Vec<_>>(),
        vec![&Step::Heal, &Step::Drain { disk: DiskId(2) }]
    );
    assert!(p.actions.iter().all(|a| a.max_bytes == Some(1 << 20)));
}

#[test]
fn s29_small_volume_gets_the_minimum_budget() {
    let mut v = volume(6);
    for d in &mut v.observation.disks {
        d.shard_bytes = 1 << 20;
    }
    assert_eq!(plan(&v).budget_bytes, Policy::MIN_BUDGET_BYTES);
}

#[test]
fn s30_replaced_disk_filling_up_is_healed() {
    // After `disk replace`, the new directory lacks the old one's shards.
    let mut v = volume(6);
    v.observation.disks[3].shards = 1000;
    v.observation.disks[3].degraded_stripes = 1000;
    v.observation.degraded_stripes = 1000;
    let p = plan(&v);
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].step, Step::Heal);
    assert!(p.actions[0].trigger.iter().any(|t| t.contains("d3: 1000")));
}

#[test]
fn s31_failed_disk_with_shards_left_is_healed_not_drained() {
    let mut v = volume(7);
    v.observation.disks[2].state = DiskState::Failed;
    v.observation.disks[2].is_available = false;
    v.observation.disks[2].degraded_stripes = 1000;
    v.observation.degraded_stripes = 1000;
    assert_eq!(steps(&v), vec![Step::Heal]);
}

#[test]
fn s32_draining_disk_interrupted_is_drained_again() {
    let mut v = volume(7);
    v.observation.disks[6].state = DiskState::Draining;
    v.observation.disks[6].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    assert_eq!(steps(&v), vec![Step::Drain { disk: DiskId(6) }]);
}

#[test]
fn s33_plans_are_deterministic() {
    let mut v = volume(9);
    v.policy.down_after_secs = 0;
    lose(&mut v, 1, None);
    v.observation.disks[4].smart = Some(SmartReading {
        passed: Some(false),
        ..SmartReading::default()
    });
    v.observation.oldest_scrub_unix = None;
    let a = plan(&v);
    let text = serde_json::to_string(&v).unwrap();
    let back: Inputs = serde_json::from_str(&text).unwrap();
    assert_eq!(plan(&back), a);
}

#[test]
fn memory_tracks_grace_flaps_trends_and_slowness() {
    let mut v = volume(6);
    lose(&mut v, 2, None);
    v.observation.disks[1].smart = Some(smart(3));
    v.observation.disks[0].read_p99_us = Some(90_000.0);
    let m1 = v.memory.after(&v.observation);
    assert_eq!(m1.runs, 1);
    assert_eq!(m1.disks[&DiskId(2)].unavailable_since_unix, Some(NOW));
    assert_eq!(m1.disks[&DiskId(1)].bad_sectors, vec![3]);
    assert_eq!(m1.disks[&DiskId(0)].slow_runs, 1);
    // Later the disk is still gone: its first sighting is kept; then it is back.
    v.memory = m1;
    v.observation.now_unix += 300;
    let m2 = v.memory.after(&v.observation);
    assert_eq!(m2.disks[&DiskId(2)].unavailable_since_unix, Some(NOW));
    v.memory = m2;
    v.observation.disks[2].is_available = true;
    let m3 = v.memory.after(&v.observation);
    assert_eq!(m3.disks[&DiskId(2)].unavailable_since_unix, None);
    assert_eq!(m3.disks[&DiskId(2)].flaps(true), 1);
    // At most MEMORY_RUNS readings are kept.
    let mut m = m3;
    for _ in 0..20 {
        m = m.after(&v.observation);
    }
    assert_eq!(
        m.disks[&DiskId(1)].bad_sectors.len(),
        super::inputs::MEMORY_RUNS
    );
}

#[test]
fn health_changes_between_runs_are_events() {
    let mut v = volume(6);
    v.observation.disks[1].smart = Some(smart(2));
    let m1 = v.memory.after(&v.observation);
    assert!(m1.changes(&v.observation).is_empty());
    lose(&mut v, 4, None);
    v.observation.disks[1].smart = Some(smart(5));
    let kinds: Vec<String> = m1
        .changes(&v.observation)
        .into_iter()
        .map(|c| format!("{}:{}", c.disk, c.kind))
        .collect();
    assert_eq!(
        kinds,
        vec!["d1:smart-bad-sectors-grew", "d4:disk-unavailable"]
    );
    let m2 = m1.after(&v.observation);
    v.observation.disks[4].is_available = true;
    let back = m2.changes(&v.observation);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].kind, "disk-available");
}
