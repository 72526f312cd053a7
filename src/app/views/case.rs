//! The case detail: one case as a person may see it.

use chrono::{DateTime, Utc};
use domain::actions::{AllowedAction, allowed_actions};
use domain::identity::{mask_name, mask_phone, may_see_identity, may_view_case};
use domain::roles::Actor;
use domain::{Case, CaseId, Event, EventBody};

use crate::app::{App, AppError};
use crate::store::Position;

/// One case as `viewer` may see it at `now`.
#[derive(Debug, Clone)]
pub struct CaseDetail {
    /// The case's number.
    pub id: CaseId,
    /// The case now. Its intake holds the caller in full: read the caller through
    /// [`CaseDetail::caller_name`] and [`CaseDetail::caller_phone`].
    pub case: Case,
    /// Whether the viewer sees the caller in full (the view was then recorded, rule 12).
    pub full_identity: bool,
    /// Every event, oldest first, the caller masked where the viewer may not see them.
    pub timeline: Vec<TimelineItem>,
    /// What the viewer may do on the case now, asked of `decide` (`domain::actions`).
    pub actions: Vec<AllowedAction>,
    /// The instant the view was made; overdue states and labels are judged at it.
    pub now: DateTime<Utc>,
}

/// One event of a case's timeline, labelled for people.
#[derive(Debug, Clone)]
pub struct TimelineItem {
    /// Its global position.
    pub position: Position,
    /// The stream version after it.
    pub version: u64,
    /// The stored type name (`transferred`).
    pub event_type: String,
    /// The event, with the caller masked where the viewer may not see them.
    pub event: Event,
    /// 受理, 转办, 签收 …
    pub label: &'static str,
    /// The display name of who acted (the username when unknown, e.g. `system`).
    pub actor_name: String,
    /// The name of the unit acted for.
    pub unit_name: String,
}

impl CaseDetail {
    /// 来电人姓名, masked unless the viewer may see it.
    pub fn caller_name(&self) -> String {
        let name = &self.case.intake().caller_name;
        if self.full_identity {
            name.clone()
        } else {
            mask_name(name)
        }
    }

    /// 来电号码, masked unless the viewer may see it.
    pub fn caller_phone(&self) -> String {
        let phone = &self.case.intake().caller_phone;
        if self.full_identity {
            phone.clone()
        } else {
            mask_phone(phone)
        }
    }
}

/// `body` with the caller's name and number masked (the intake of 受理 and of drafts).
fn masked(mut body: EventBody) -> EventBody {
    if let EventBody::Accepted { intake, .. } | EventBody::DraftSaved { intake, .. } = &mut body {
        intake.caller_name = mask_name(&intake.caller_name);
        intake.caller_phone = mask_phone(&intake.caller_phone);
    }
    body
}

impl App {
    /// The case `case_id` as `viewer` may see it now: outside their scope it does not exist
    /// (rule 14); a full view of the caller is recorded before it is shown (rule 12).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown case or one outside the viewer's scope; store
    /// failures, a failure to record the identity view among them.
    pub async fn case_detail(
        &self,
        viewer: &Actor,
        case_id: &CaseId,
    ) -> Result<CaseDetail, AppError> {
        let (case, history) = self.history(case_id).await?;
        if !may_view_case(viewer, &case, &self.org) {
            return Err(AppError::NotFound(case_id.to_string()));
        }
        let full_identity = may_see_identity(viewer, &case, &self.org);
        let intake = case.intake();
        if full_identity && !(intake.caller_name.is_empty() && intake.caller_phone.is_empty()) {
            self.record_identity_view(viewer, case_id).await?;
        }
        let now = self.now();
        let timeline = history
            .into_iter()
            .map(|(rec, event)| TimelineItem {
                position: rec.position,
                version: rec.version,
                label: event.body.label_zh(),
                actor_name: self
                    .directory
                    .user(&event.actor)
                    .map_or_else(|| event.actor.clone(), |u| u.display_name.clone()),
                unit_name: self
                    .org
                    .get(&event.unit_id)
                    .map(|u| u.name.clone())
                    .unwrap_or_default(),
                event_type: rec.event_type,
                event: if full_identity {
                    event
                } else {
                    Event {
                        body: masked(event.body),
                        ..event
                    }
                },
            })
            .collect();
        let ctx = self.context(viewer, now);
        let actions = allowed_actions(&case, &ctx);
        Ok(CaseDetail {
            id: case_id.clone(),
            case,
            full_identity,
            timeline,
            actions,
            now,
        })
    }
}
