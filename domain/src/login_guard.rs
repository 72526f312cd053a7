//! The rules against password guessing, for one key (an account, or a client address): how
//! many failures are allowed in a window, how the answers to the last ones before the lock
//! slow down, when a temporary lock starts and when it ends.
//!
//! Pure: the caller keeps one [`Attempts`] per key and passes the time in. An attempt is
//! [`admitted`](LoginPolicy::admit) before the password is checked and counted as in flight
//! until it [`failed`](LoginPolicy::failed), [`succeeded`](LoginPolicy::succeeded) or was
//! [`abandoned`](LoginPolicy::abandoned) (not checked at all): attempts sent at once cannot
//! together check more passwords than the failures left before the lock.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// The thresholds of one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures within [`window`](Self::window) that start a lock (at least 1).
    pub max_failures: u32,
    /// How far back failures count.
    pub window: TimeDelta,
    /// How long a lock lasts from the failure that started it.
    pub lock_for: TimeDelta,
    /// How many of the failures before the lock are answered late, the later the closer to
    /// the lock: the first of them after [`first_delay`](Self::first_delay), each next one
    /// twice as late, at most [`max_delay`](Self::max_delay).
    pub delayed_failures: u32,
    /// The delay of the first delayed failure.
    pub first_delay: TimeDelta,
    /// The longest delay.
    pub max_delay: TimeDelta,
}

impl LoginPolicy {
    /// `max_failures` in `minutes` lock for `minutes`; the last six failures before the lock
    /// are answered after 0.25 s, 0.5 s, 1 s, then 2 s each.
    pub fn new(max_failures: u32, minutes: u32) -> Self {
        let minutes = TimeDelta::minutes(i64::from(minutes));
        LoginPolicy {
            max_failures: max_failures.max(1),
            window: minutes,
            lock_for: minutes,
            delayed_failures: 6,
            first_delay: TimeDelta::milliseconds(250),
            max_delay: TimeDelta::seconds(2),
        }
    }
}

/// What is known of one key's recent attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Times of the failures within the window, oldest first (at most `max_failures`).
    failures: VecDeque<DateTime<Utc>>,
    /// Until when the key is locked.
    locked_until: Option<DateTime<Utc>>,
    /// When the current lock started.
    locked_since: Option<DateTime<Utc>>,
    /// Attempts admitted whose outcome is not known yet.
    in_flight: u32,
}

/// The answer to an attempt before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password.
    Admitted,
    /// Locked until then: refuse without checking.
    Locked {
        /// When the lock ends.
        until: DateTime<Utc>,
    },
    /// As many attempts in flight as failures left before the lock: refuse for now.
    Busy,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures within the window, this one included.
    pub failures: u32,
    /// How long to wait before answering it.
    pub delay: TimeDelta,
    /// When this failure started a lock: its end.
    pub locked_until: Option<DateTime<Utc>>,
}

impl Attempts {
    /// Until when the key is locked, if it is at `now`.
    pub fn locked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// When the current lock started.
    pub fn locked_since(&self) -> Option<DateTime<Utc>> {
        self.locked_since
    }

    /// Failures within the window of `policy` at `now`.
    pub fn failures(&self, policy: &LoginPolicy, now: DateTime<Utc>) -> u32 {
        let since = now - policy.window;
        self.failures.iter().filter(|at| **at > since).count() as u32
    }

    /// Nothing to remember at `now`: no failure in the window, no lock, nothing in flight
    /// (the caller may forget the key).
    pub fn is_idle(&self, policy: &LoginPolicy, now: DateTime<Utc>) -> bool {
        self.in_flight == 0 && self.locked_until(now).is_none() && self.failures(policy, now) == 0
    }

    fn forget_old(&mut self, policy: &LoginPolicy, now: DateTime<Utc>) {
        let since = now - policy.window;
        while self.failures.front().is_some_and(|at| *at <= since) {
            self.failures.pop_front();
        }
        if self.locked_until.is_some_and(|until| until <= now) {
            // A lock that ended starts the count afresh.
            self.locked_until = None;
            self.locked_since = None;
            self.failures.clear();
        }
    }
}

impl LoginPolicy {
    /// Whether an attempt on this key may check its password at `now`; an admitted one is
    /// in flight until its outcome is reported.
    pub fn admit(&self, attempts: &mut Attempts, now: DateTime<Utc>) -> Admission {
        attempts.forget_old(self, now);
        if let Some(until) = attempts.locked_until(now) {
            return Admission::Locked { until };
        }
        if attempts.failures.len() as u32 + attempts.in_flight >= self.max_failures {
            return Admission::Busy;
        }
        attempts.in_flight += 1;
        Admission::Admitted
    }

    /// An admitted attempt failed at `now`: its delay, and the lock it starts.
    pub fn failed(&self, attempts: &mut Attempts, now: DateTime<Utc>) -> Failure {
        attempts.in_flight = attempts.in_flight.saturating_sub(1);
        attempts.forget_old(self, now);
        attempts.failures.push_back(now);
        while attempts.failures.len() as u32 > self.max_failures {
            attempts.failures.pop_front();
        }
        let failures = attempts.failures.len() as u32;
        if failures >= self.max_failures && attempts.locked_until(now).is_none() {
            let until = now + self.lock_for;
            attempts.locked_until = Some(until);
            attempts.locked_since = Some(now);
            return Failure {
                failures,
                delay: TimeDelta::zero(),
                locked_until: Some(until),
            };
        }
        Failure {
            failures,
            delay: self.delay_after(failures),
            locked_until: None,
        }
    }

    /// The delay of the answer to the `failures`-th failure in the window.
    pub fn delay_after(&self, failures: u32) -> TimeDelta {
        let undelayed = self.max_failures.saturating_sub(self.delayed_failures + 1);
        if failures <= undelayed || failures >= self.max_failures {
            return TimeDelta::zero();
        }
        let doublings = (failures - undelayed - 1).min(16);
        (self.first_delay * (1 << doublings)).min(self.max_delay)
    }

    /// An admitted attempt had the right password: the failures are forgiven.
    pub fn succeeded(&self, attempts: &mut Attempts) {
        attempts.in_flight = attempts.in_flight.saturating_sub(1);
        attempts.failures.clear();
    }

    /// An admitted attempt was not checked after all (the service was too busy).
    pub fn abandoned(&self, attempts: &mut Attempts) {
        attempts.in_flight = attempts.in_flight.saturating_sub(1);
    }

    /// A failure of the same key at `at` on another instance sharing the store, learnt at
    /// `now`: it counts here as if it had been here (it was never in flight here), and may
    /// start the lock, from `at`. Returns the end of a lock it started.
    pub fn failed_elsewhere(
        &self,
        attempts: &mut Attempts,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        attempts.forget_old(self, now);
        if at <= now - self.window {
            return None;
        }
        // Facts arrive about in order; keep the failures sorted all the same.
        let place = attempts.failures.partition_point(|t| *t <= at);
        attempts.failures.insert(place, at);
        while attempts.failures.len() as u32 > self.max_failures {
            attempts.failures.pop_front();
        }
        let until = at + self.lock_for;
        if attempts.failures.len() as u32 >= self.max_failures
            && attempts.locked_until(now).is_none()
            && until > now
        {
            attempts.locked_until = Some(until);
            attempts.locked_since = Some(at);
            return Some(until);
        }
        None
    }

    /// The right password on another instance: the failures are forgiven here too (what is
    /// in flight here stays).
    pub fn succeeded_elsewhere(&self, attempts: &mut Attempts) {
        attempts.failures.clear();
    }

    /// An administrator lifts the lock: the key starts afresh. Returns whether it was locked.
    pub fn unlock(&self, attempts: &mut Attempts, now: DateTime<Utc>) -> bool {
        let was = attempts.locked_until(now).is_some();
        attempts.locked_until = None;
        attempts.locked_since = None;
        attempts.failures.clear();
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).expect("valid time")
    }

    /// Admits and fails `n` attempts, one second apart from `start`; the last failure.
    fn fail_times(
        policy: &LoginPolicy,
        attempts: &mut Attempts,
        start: i64,
        n: i64,
    ) -> Vec<Failure> {
        (0..n)
            .map(|i| {
                assert_eq!(
                    policy.admit(attempts, at(start + i)),
                    Admission::Admitted,
                    "attempt {i}"
                );
                policy.failed(attempts, at(start + i))
            })
            .collect()
    }

    #[test]
    fn ten_failures_in_fifteen_minutes_lock_for_fifteen_minutes() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        let failures = fail_times(&policy, &mut attempts, 0, 10);
        assert!(failures[..9].iter().all(|f| f.locked_until.is_none()));
        let until = at(9) + TimeDelta::minutes(15);
        assert_eq!(failures[9].locked_until, Some(until));
        assert_eq!(
            policy.admit(&mut attempts, at(10)),
            Admission::Locked { until }
        );
        assert_eq!(attempts.locked_since(), Some(at(9)));
        assert_eq!(
            policy.admit(&mut attempts, until - TimeDelta::seconds(1)),
            Admission::Locked { until }
        );
        // The lock ends on time and the count starts afresh.
        assert_eq!(policy.admit(&mut attempts, until), Admission::Admitted);
        assert_eq!(policy.failed(&mut attempts, until).failures, 1);
    }

    #[test]
    fn failures_on_another_instance_count_here_and_can_start_the_lock() {
        let policy = LoginPolicy::new(4, 15);
        let mut attempts = Attempts::default();
        // Two here, two there (learnt a little late and out of order): locked from the last.
        fail_times(&policy, &mut attempts, 0, 2);
        assert_eq!(policy.failed_elsewhere(&mut attempts, at(3), at(5)), None);
        assert_eq!(attempts.failures(&policy, at(5)), 3);
        let until = at(2) + TimeDelta::minutes(15);
        assert_eq!(
            policy.failed_elsewhere(&mut attempts, at(2), at(6)),
            Some(until),
            "the fourth failure, whichever instance it was on"
        );
        assert_eq!(
            policy.admit(&mut attempts, at(7)),
            Admission::Locked { until }
        );
        assert_eq!(attempts.locked_since(), Some(at(2)));
        // A further one elsewhere does not move the lock.
        assert_eq!(policy.failed_elsewhere(&mut attempts, at(8), at(9)), None);
        assert_eq!(
            policy.admit(&mut attempts, at(10)),
            Admission::Locked { until }
        );
    }

    #[test]
    fn a_failure_elsewhere_outside_the_window_or_whose_lock_has_run_out_counts_for_nothing() {
        let policy = LoginPolicy::new(2, 15);
        let mut attempts = Attempts::default();
        let late = at(0) + TimeDelta::minutes(20);
        assert_eq!(policy.failed_elsewhere(&mut attempts, at(0), late), None);
        assert_eq!(attempts.failures(&policy, late), 0);
        // Two failures learnt after the lock they would have started had ended.
        let mut attempts = Attempts::default();
        let now = at(0) + TimeDelta::minutes(14);
        assert_eq!(policy.failed_elsewhere(&mut attempts, at(0), now), None);
        let after_lock = at(1) + TimeDelta::minutes(15);
        assert_eq!(
            policy.failed_elsewhere(&mut attempts, at(1), after_lock),
            None
        );
        assert_eq!(policy.admit(&mut attempts, after_lock), Admission::Admitted);
    }

    #[test]
    fn a_success_elsewhere_forgives_the_failures_but_not_what_is_in_flight_here() {
        let policy = LoginPolicy::new(3, 15);
        let mut attempts = Attempts::default();
        fail_times(&policy, &mut attempts, 0, 2);
        assert_eq!(policy.admit(&mut attempts, at(3)), Admission::Admitted);
        policy.succeeded_elsewhere(&mut attempts);
        assert_eq!(attempts.failures(&policy, at(4)), 0);
        assert!(
            !attempts.is_idle(&policy, at(4)),
            "one attempt still in flight here"
        );
        policy.abandoned(&mut attempts);
        assert!(attempts.is_idle(&policy, at(4)));
    }

    #[test]
    fn the_last_failures_before_the_lock_are_answered_later_and_later() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        let delays: Vec<i64> = fail_times(&policy, &mut attempts, 0, 10)
            .iter()
            .map(|f| f.delay.num_milliseconds())
            .collect();
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 2000, 2000, 0]);
        let wide = LoginPolicy::new(30, 15);
        assert_eq!(wide.delay_after(23), TimeDelta::zero());
        assert_eq!(wide.delay_after(24), TimeDelta::milliseconds(250));
        assert_eq!(wide.delay_after(29), TimeDelta::seconds(2));
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        fail_times(&policy, &mut attempts, 0, 9);
        // Fifteen minutes after the first failure, it no longer counts: no lock.
        let later = 15 * 60;
        let f = fail_times(&policy, &mut attempts, later, 1)[0];
        assert_eq!((f.failures, f.locked_until), (9, None));
        assert!(!attempts.is_idle(&policy, at(later)));
        assert!(attempts.is_idle(&policy, at(later + 15 * 60)));
    }

    #[test]
    fn a_right_password_forgives_the_failures_but_not_a_lock() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        fail_times(&policy, &mut attempts, 0, 9);
        assert_eq!(policy.admit(&mut attempts, at(9)), Admission::Admitted);
        policy.succeeded(&mut attempts);
        assert_eq!(attempts.failures(&policy, at(10)), 0);
        fail_times(&policy, &mut attempts, 20, 10);
        assert!(matches!(
            policy.admit(&mut attempts, at(40)),
            Admission::Locked { .. }
        ));
    }

    #[test]
    fn attempts_sent_at_once_check_no_more_passwords_than_the_failures_left() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        fail_times(&policy, &mut attempts, 0, 7);
        let admitted = (0..64)
            .filter(|_| policy.admit(&mut attempts, at(8)) == Admission::Admitted)
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(policy.admit(&mut attempts, at(8)), Admission::Busy);
        // One is not checked after all: its place is free again.
        policy.abandoned(&mut attempts);
        assert_eq!(policy.admit(&mut attempts, at(8)), Admission::Admitted);
        for _ in 0..3 {
            policy.failed(&mut attempts, at(9));
        }
        assert!(matches!(
            policy.admit(&mut attempts, at(9)),
            Admission::Locked { .. }
        ));
    }

    #[test]
    fn an_administrator_lifts_a_lock() {
        let policy = LoginPolicy::new(10, 15);
        let mut attempts = Attempts::default();
        fail_times(&policy, &mut attempts, 0, 10);
        assert!(policy.unlock(&mut attempts, at(11)));
        assert!(!policy.unlock(&mut attempts, at(11)), "only once");
        assert_eq!(policy.admit(&mut attempts, at(12)), Admission::Admitted);
        assert!(attempts.locked_since().is_none());
    }
}
