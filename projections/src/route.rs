//! 流转轨迹 — the path a case has travelled: every hop of every transfer, with recalls,
//! receipts and completions, folded from the case's events.

use chrono::{DateTime, Utc};
use domain::case::HandlingRole;
use domain::{Event, EventBody};

/// Where a hop stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopState {
    /// 已转办, 未接收.
    Pending,
    /// 已接收.
    Received,
    /// 已办结.
    Completed,
    /// 已追回.
    Recalled,
    /// Cancelled by a merge.
    Cancelled,
}

/// One unit given the case by one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The transfer within the case.
    pub transfer_id: u32,
    /// The assignment within the case.
    pub assignment_id: u32,
    /// Who transferred.
    pub from_unit_id: String,
    /// Who was given the case.
    pub to_unit_id: String,
    /// 主办 or 协办.
    pub role: HandlingRole,
    /// When.
    pub at: DateTime<Utc>,
    /// Where it stands now.
    pub state: HopState,
    /// When it was received (the latest time, after a reopen).
    pub received_at: Option<DateTime<Utc>>,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the transferrer took it back (追回).
    pub recalled_at: Option<DateTime<Utc>>,
}

/// The hops of a case in the order they happened.
pub fn route(events: &[Event]) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    let find = |hops: &mut Vec<Hop>, id: u32| hops.iter_mut().position(|h| h.assignment_id == id);
    for event in events {
        match &event.body {
            EventBody::Transferred {
                transfer_id,
                assignments,
                ..
            } => {
                for a in assignments {
                    hops.push(Hop {
                        transfer_id: *transfer_id,
                        assignment_id: a.assignment_id,
                        from_unit_id: event.unit_id.to_string(),
                        to_unit_id: a.unit_id.to_string(),
                        role: a.role,
                        at: event.at,
                        state: HopState::Pending,
                        received_at: None,
                        completed_at: None,
                        recalled_at: None,
                    });
                }
            }
            EventBody::Recalled { assignment_ids, .. } => {
                for id in assignment_ids {
                    if let Some(i) = find(&mut hops, *id) {
                        hops[i].state = HopState::Recalled;
                        hops[i].recalled_at = Some(event.at);
                    }
                }
            }
            EventBody::Received { assignment_id } => {
                if let Some(i) = find(&mut hops, *assignment_id) {
                    hops[i].state = HopState::Received;
                    hops[i].received_at = Some(event.at);
                }
            }
            EventBody::Completed { assignment_id, .. } => {
                if let Some(i) = find(&mut hops, *assignment_id) {
                    hops[i].state = HopState::Completed;
                    hops[i].completed_at = Some(event.at);
                }
            }
            EventBody::Reopened { assignment_id, .. } => {
                if let Some(i) = find(&mut hops, *assignment_id) {
                    hops[i].state = HopState::Received;
                    hops[i].completed_at = None;
                }
            }
            EventBody::Merged {
                cancelled_assignment_ids,
                ..
            } => {
                for id in cancelled_assignment_ids {
                    if let Some(i) = find(&mut hops, *id) {
                        hops[i].state = HopState::Cancelled;
                    }
                }
            }
            _ => {}
        }
    }
    hops
}
