//! Which working calendar measures a handling time (办理用时): the one in force when the
//! assignment was completed. The service's calendar is versioned data (`domain::rules`), so a
//! span completed after a year's holidays were recorded is measured with them, and one
//! completed before keeps the measure it had: a rebuild gives the same figures.

use chrono::{DateTime, Utc};
use domain::calendar::{WorkingCalendar, WorkingSpan};

/// Measures the working time of a completed assignment.
pub trait Calendars: Send + Sync {
    /// The working time from `given` to `completed`, on the calendar in force at `completed`.
    fn handling_time(&self, given: DateTime<Utc>, completed: DateTime<Utc>) -> WorkingSpan;
}

/// One calendar for every instant (tests, and tools without recorded rules).
impl Calendars for WorkingCalendar {
    fn handling_time(&self, given: DateTime<Utc>, completed: DateTime<Utc>) -> WorkingSpan {
        self.working_time_between(given, completed)
    }
}
