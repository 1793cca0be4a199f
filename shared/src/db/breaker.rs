//! A per-process circuit breaker over database connections. After a run of consecutive
//! connection failures it opens: callers are refused at once (no connect timeout waited out)
//! until a cool-down has passed; then one trial is let through (half-open), and its outcome
//! closes the breaker or opens it for another cool-down. Pure state: the caller passes the
//! time, so every transition is unit-tested without a database or a clock.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

pub use crate::config::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_started: Instant },
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: connect as usual, with retries.
    Pass,
    /// Half-open and this caller is the one trial: connect once, report the outcome.
    Trial,
    /// Open, or a trial is already running: fail now; worth trying again after this long.
    Refused { retry_after: Duration },
}

/// What health checks and logs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Closed,
    Open,
    HalfOpen,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Pass,
            State::Open { until } if now < until => Admission::Refused {
                retry_after: until - now,
            },
            State::HalfOpen { trial_started }
                if now.duration_since(trial_started) < self.config.cool_down =>
            {
                Admission::Refused {
                    retry_after: self.config.cool_down - now.duration_since(trial_started),
                }
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                if matches!(*state, State::Open { .. }) {
                    tracing::info!(
                        "database circuit half-open: letting one trial connection through"
                    );
                }
                *state = State::HalfOpen { trial_started: now };
                Admission::Trial
            }
        }
    }

    /// A connection was made: whatever the state, the database is reachable.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        if matches!(*state, State::Open { .. } | State::HalfOpen { .. }) {
            tracing::info!("database circuit closed: connections succeed again");
        }
        *state = State::Closed { failures: 0 };
    }

    /// A connection could not be made (after the caller's retries).
    pub fn failed(&self, now: Instant) {
        let mut state = self.lock();
        let until = now + self.config.cool_down;
        match *state {
            State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
            }
            State::Closed { failures } => {
                tracing::error!(
                    failures = failures + 1,
                    cool_down_ms = self.config.cool_down.as_millis() as u64,
                    "database circuit open: refusing database work until the cool-down ends"
                );
                *state = State::Open { until };
            }
            State::HalfOpen { .. } => {
                tracing::warn!(
                    cool_down_ms = self.config.cool_down.as_millis() as u64,
                    "database circuit open again: the trial connection failed"
                );
                *state = State::Open { until };
            }
            // A request admitted before the breaker opened, failing late: nothing new.
            State::Open { .. } => {}
        }
    }

    pub fn status(&self, now: Instant) -> Status {
        match *self.lock() {
            State::Closed { .. } => Status::Closed,
            State::Open { until } if now < until => Status::Open,
            State::Open { .. } | State::HalfOpen { .. } => Status::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always valid: a panic elsewhere while holding it cannot corrupt it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(5);

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            cool_down: COOL_DOWN,
        })
    }

    /// A breaker that just opened at `t` (three failures in a row).
    fn opened_at(t: Instant) -> Breaker {
        let b = breaker();
        for _ in 0..3 {
            b.failed(t);
        }
        b
    }

    #[test]
    fn stays_closed_below_the_threshold_and_a_success_resets_the_count() {
        let b = breaker();
        let t = Instant::now();
        b.failed(t);
        b.failed(t);
        assert_eq!(b.admit(t), Admission::Pass);
        b.succeeded();
        b.failed(t);
        b.failed(t);
        assert_eq!(b.admit(t), Admission::Pass, "the success reset the run");
        assert_eq!(b.status(t), Status::Closed);
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_until_the_cool_down_ends() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.admit(t), Admission::Pass);
            b.failed(t);
        }
        assert_eq!(b.status(t), Status::Open);
        let later = t + Duration::from_secs(2);
        assert_eq!(
            b.admit(later),
            Admission::Refused {
                retry_after: Duration::from_secs(3)
            }
        );
        assert_eq!(b.admit(t + COOL_DOWN), Admission::Trial);
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_success_closes() {
        let t = Instant::now();
        let b = opened_at(t);
        let after = t + COOL_DOWN;
        assert_eq!(b.status(after), Status::HalfOpen);
        assert_eq!(b.admit(after), Admission::Trial);
        assert!(matches!(b.admit(after), Admission::Refused { .. }));
        b.succeeded();
        assert_eq!(b.status(after), Status::Closed);
        assert_eq!(b.admit(after), Admission::Pass);
    }

    #[test]
    fn a_failed_trial_opens_it_for_another_cool_down() {
        let t = Instant::now();
        let b = opened_at(t);
        let trial = t + COOL_DOWN;
        assert_eq!(b.admit(trial), Admission::Trial);
        b.failed(trial);
        assert_eq!(b.status(trial), Status::Open);
        assert_eq!(
            b.admit(trial + Duration::from_secs(1)),
            Admission::Refused {
                retry_after: Duration::from_secs(4)
            }
        );
        assert_eq!(b.admit(trial + COOL_DOWN), Admission::Trial);
    }

    #[test]
    fn a_trial_that_never_reports_does_not_keep_it_half_open_forever() {
        let t = Instant::now();
        let b = opened_at(t);
        let trial = t + COOL_DOWN;
        assert_eq!(b.admit(trial), Admission::Trial);
        // Its request was cancelled: no report. After another cool-down, a new trial.
        assert!(matches!(
            b.admit(trial + Duration::from_secs(1)),
            Admission::Refused { .. }
        ));
        assert_eq!(b.admit(trial + COOL_DOWN), Admission::Trial);
    }

    #[test]
    fn concurrent_callers_in_half_open_get_exactly_one_trial() {
        let t = Instant::now();
        let b = Arc::new(opened_at(t));
        let at = t + COOL_DOWN;
        let admissions: Vec<Admission> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let b = b.clone();
                    scope.spawn(move || b.admit(at))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        let trials = admissions
            .iter()
            .filter(|a| **a == Admission::Trial)
            .count();
        assert_eq!(trials, 1, "{admissions:?}");
        assert!(admissions
            .iter()
            .all(|a| matches!(a, Admission::Trial | Admission::Refused { .. })));
    }

    #[test]
    fn a_late_failure_while_open_does_not_extend_the_cool_down() {
        let t = Instant::now();
        let b = opened_at(t);
        b.failed(t + Duration::from_secs(4));
        assert_eq!(b.admit(t + COOL_DOWN), Admission::Trial);
    }
}
