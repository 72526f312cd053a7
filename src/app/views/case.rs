//! The case detail: one case as a person may see it.

use chrono::{DateTime, Utc};
use domain::actions::{AllowedAction, allowed_actions};
use domain::identity::{
    Extent, mask_name, mask_phone, may_see_identity, may_view_case, view_extent, visible_prefix,
};
use domain::roles::{Actor, Role};
use domain::{Case, CaseId, Event, EventBody, evolve};

use crate::app::failure::Failure;
use crate::app::{App, AppError, IdentityView};
use crate::store::Position;

/// One case as `viewer` may see it at `now`.
#[derive(Debug, Clone)]
pub struct CaseDetail {
    /// The case's number.
    pub id: CaseId,
    /// The case now, or as it was at [`CaseDetail::until`]. Its intake holds the caller in
    /// full: read the caller through [`CaseDetail::caller_name`] and
    /// [`CaseDetail::caller_phone`].
    pub case: Case,
    /// The case's stream version now, the `If-Match` of the viewer's next command: for a
    /// unit whose part is over, `case` is older than that (the case as it was at
    /// [`CaseDetail::until`]) while the actions it may still take (申诉) act on the case now.
    pub current_version: u64,
    /// For a unit whose part is over: the end of its part, where its view of the case stops
    /// (`domain::identity::view_extent`); `None` for the whole case.
    pub until: Option<DateTime<Utc>>,
    /// Whether the viewer sees the caller in full (the view was then recorded, rule 12).
    pub full_identity: bool,
    /// Whether the viewer may see the caller in full but was shown them masked, because the
    /// view did not ask ([`App::case_detail_revealing`] with `reveal = false`): a page offers
    /// the full identity as a deliberate, recorded step.
    pub may_reveal: bool,
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
    /// failures. A failure to record an identity view is not one: the caller is then shown
    /// masked, and the failure logged.
    pub async fn case_detail(
        &self,
        viewer: &Actor,
        case_id: &CaseId,
    ) -> Result<CaseDetail, AppError> {
        self.case_detail_revealing(viewer, case_id, true).await
    }

    /// As [`App::case_detail`], showing (and recording) the caller's full identity only when
    /// `reveal` asks for it; otherwise the caller is masked and
    /// [`CaseDetail::may_reveal`] says whether the viewer could ask. The workbench shows the
    /// caller masked until the person asks, so that every recorded view was meant.
    ///
    /// # Errors
    /// As [`App::case_detail`].
    pub async fn case_detail_revealing(
        &self,
        viewer: &Actor,
        case_id: &CaseId,
        reveal: bool,
    ) -> Result<CaseDetail, AppError> {
        let (current, history) = self.history(case_id).await?;
        if !may_view_case(viewer, &current, &self.org()) {
            return Err(AppError::NotFound(case_id.to_string()));
        }
        let now = self.now();
        let org = self.org();
        let rules = self.rules.current();
        let ctx = self.context(viewer, &org, rules.rules.in_force(now), now);
        let actions = allowed_actions(&current, &ctx);
        let mut full_identity = may_see_identity(viewer, &current, &self.org());
        let current_version = current.version();
        // A unit whose part is over reads the case as it was when its part ended.
        let (case, history, until) = match view_extent(viewer, &current, &self.org()) {
            Extent::Whole => (current, history, None),
            Extent::Until(end) => {
                let cut = visible_prefix(viewer, history.iter().map(|(_, e)| e), &self.org());
                let mut history = history;
                history.truncate(cut);
                let case = history
                    .iter()
                    .fold(Case::default(), |case, (_, event)| evolve(case, event));
                (case, history, Some(end))
            }
        };
        let intake = case.intake();
        let nothing_to_hide = intake.caller_name.is_empty() && intake.caller_phone.is_empty();
        let may_reveal = full_identity && !reveal && !nothing_to_hide;
        full_identity &= reveal || nothing_to_hide;
        if full_identity
            && !nothing_to_hide
            && let Err(err) = self.record_identity_view(viewer, case_id).await
        {
            // Reading goes on without the identity: it is never shown unrecorded.
            tracing::error!(case = %case_id, error = %err, "could not record an identity view; showing the caller masked");
            full_identity = false;
        }
        // Each step names the unit as it was called then (a unit renamed since keeps the
        // name it had when the step was recorded).
        let directory = self.orgs.current();
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
                unit_name: directory
                    .name_at(&event.unit_id, rec.position.0)
                    .map(str::to_owned)
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
        Ok(CaseDetail {
            id: case_id.clone(),
            case,
            current_version,
            until,
            full_identity,
            may_reveal,
            timeline,
            actions,
            now,
        })
    }
}

/// The most identity views on one page.
pub const MAX_IDENTITY_VIEWS_PER_PAGE: u32 = 200;

/// A page of a case's identity-view audit, oldest first.
#[derive(Debug, Clone)]
pub struct IdentityViewPage {
    /// The views of the page.
    pub items: Vec<IdentityView>,
    /// Views recorded over all pages.
    pub total: u64,
    /// The page (1-based).
    pub page: u32,
    /// Views per page.
    pub per_page: u32,
}

impl App {
    /// Who saw the caller's full identity on `case_id`, and when: for the city centre's shift
    /// leaders, the efficiency office and admins, within their scope.
    ///
    /// # Errors
    /// 403 for other roles; 404 for an unknown case or one outside the scope; 400 for a page
    /// out of bounds; store failures.
    pub async fn identity_view_page(
        &self,
        viewer: &Actor,
        case_id: &CaseId,
        (page, per_page): (u32, u32),
    ) -> Result<IdentityViewPage, Failure> {
        let centre_lead = viewer.has(Role::ShiftLeader) && viewer.at_city_centre(&self.org());
        if !(viewer.has(Role::Admin) || viewer.has(Role::Supervisor) || centre_lead) {
            return Err(Failure::role_not_allowed(
                "当前角色无权查看身份查阅记录",
                "identity views are readable by `shift_leader` (of the city centre), \
                 `supervisor` and `admin`",
                &[Role::ShiftLeader, Role::Supervisor, Role::Admin],
            ));
        }
        if page == 0 || !(1..=MAX_IDENTITY_VIEWS_PER_PAGE).contains(&per_page) {
            return Err(Failure::bad_request(
                "invalid_query",
                format!(
                    "`page` must be at least 1 and `per_page` 1 to {MAX_IDENTITY_VIEWS_PER_PAGE}"
                ),
            ));
        }
        let case = self.case(case_id).await?;
        if case.version() == 0 || !may_view_case(viewer, &case, &self.org()) {
            return Err(AppError::NotFound(case_id.to_string()).into());
        }
        let views = self.identity_views(case_id).await?;
        let total = views.len() as u64;
        let skip = (u64::from(page) - 1).saturating_mul(u64::from(per_page));
        let items = views
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(per_page as usize)
            .collect();
        Ok(IdentityViewPage {
            items,
            total,
            page,
            per_page,
        })
    }
}
