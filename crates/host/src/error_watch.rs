//! System-error reports: when a component's answers to clients turn 5xx over a window, the
//! host says so once per cool-down to a component of the app (`--report-errors-to`), which
//! decides what that means (Tessera's alert component raises a `system.error` alert). The
//! host knows only components, statuses and one internal route; alerting stays the app's
//! business, as a Spin factor does not import the app it serves.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// The route of the reporting component that receives [`ErrorReport`]s (reached as
/// `http://<component>.spin.internal`, so no public route leads to it).
pub const REPORT_PATH: &str = "/internal/system-errors";

/// When a component counts as failing.
#[derive(Clone, Copy, Debug)]
pub struct ErrorWatchSettings {
    /// The window errors are counted over.
    pub window: Duration,
    /// Fewest 5xx answers in the window that make a report (a single failure is noise).
    pub min_errors: u64,
    /// Smallest share of 5xx among the window's answers that makes a report.
    pub min_rate: f64,
    /// Quiet time after a report before the same component is reported again.
    pub cooldown: Duration,
}

impl Default for ErrorWatchSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            min_errors: 5,
            min_rate: 0.1,
            cooldown: Duration::from_secs(900),
        }
    }
}

/// What the reporting component receives, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorReport {
    pub component: String,
    pub window_s: u64,
    pub requests: u64,
    pub errors: u64,
    pub rate: f64,
    /// 5xx answers in the window by status.
    pub statuses: BTreeMap<u16, u64>,
}

/// Counts per component in buckets of a thirtieth of the window, so memory stays fixed
/// however busy the component is.
pub struct ErrorWatch {
    settings: ErrorWatchSettings,
    bucket_ms: u64,
    components: Mutex<HashMap<String, Window>>,
}

#[derive(Default)]
struct Window {
    buckets: VecDeque<Bucket>,
    last_report_ms: Option<u64>,
}

struct Bucket {
    index: u64,
    requests: u64,
    errors: BTreeMap<u16, u64>,
}

impl ErrorWatch {
    pub fn new(settings: ErrorWatchSettings) -> Self {
        let window_ms = settings.window.as_millis().max(1) as u64;
        Self {
            settings,
            bucket_ms: (window_ms / 30).max(1),
            components: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one answer of `component` at `now_ms` (any monotonic milliseconds); a report
    /// when this answer makes the component fail and it was not reported within the
    /// cool-down.
    pub fn record(&self, component: &str, status: u16, now_ms: u64) -> Option<ErrorReport> {
        let mut components = self
            .components
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = components.entry(component.to_string()).or_default();
        let index = now_ms / self.bucket_ms;
        let buckets_per_window = self.settings.window.as_millis() as u64 / self.bucket_ms;
        while window
            .buckets
            .front()
            .is_some_and(|b| b.index + buckets_per_window <= index)
        {
            window.buckets.pop_front();
        }
        if window.buckets.back().is_none_or(|b| b.index != index) {
            window.buckets.push_back(Bucket {
                index,
                requests: 0,
                errors: BTreeMap::new(),
            });
        }
        let bucket = window.buckets.back_mut()?;
        bucket.requests += 1;
        if status < 500 {
            return None;
        }
        *bucket.errors.entry(status).or_default() += 1;

        let requests: u64 = window.buckets.iter().map(|b| b.requests).sum();
        let mut statuses = BTreeMap::new();
        for b in &window.buckets {
            for (status, n) in &b.errors {
                *statuses.entry(*status).or_default() += n;
            }
        }
        let errors: u64 = statuses.values().sum();
        let rate = errors as f64 / requests as f64;
        let cooled = window.last_report_ms.is_none_or(|last| {
            now_ms.saturating_sub(last) >= self.settings.cooldown.as_millis() as u64
        });
        if errors < self.settings.min_errors || rate < self.settings.min_rate || !cooled {
            return None;
        }
        window.last_report_ms = Some(now_ms);
        Some(ErrorReport {
            component: component.to_string(),
            window_s: self.settings.window.as_secs(),
            requests,
            errors,
            rate,
            statuses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> ErrorWatch {
        ErrorWatch::new(ErrorWatchSettings {
            window: Duration::from_secs(60),
            min_errors: 3,
            min_rate: 0.5,
            cooldown: Duration::from_secs(600),
        })
    }

    #[test]
    fn reports_once_the_count_and_the_rate_are_both_reached() {
        let w = watch();
        assert_eq!(w.record("kb", 500, 0), None);
        assert_eq!(w.record("kb", 503, 10), None);
        let report = w.record("kb", 500, 20).expect("third error in the window");
        assert_eq!(report.component, "kb");
        assert_eq!((report.requests, report.errors), (3, 3));
        assert_eq!(report.statuses, BTreeMap::from([(500, 2), (503, 1)]));
        assert_eq!(report.window_s, 60);
    }

    #[test]
    fn a_low_error_rate_is_not_reported() {
        let w = watch();
        for t in 0..10 {
            assert_eq!(w.record("kb", 200, t), None);
        }
        for t in 10..13 {
            // 3 errors of 13 answers: under the 50 % rate.
            assert_eq!(w.record("kb", 500, t), None);
        }
    }

    #[test]
    fn errors_older_than_the_window_are_forgotten() {
        let w = watch();
        w.record("kb", 500, 0);
        w.record("kb", 500, 1_000);
        // 70 s later the first two are out of the 60 s window.
        assert_eq!(w.record("kb", 500, 70_000), None);
        assert_eq!(w.record("kb", 500, 71_000), None);
        assert!(w.record("kb", 500, 72_000).is_some());
    }

    #[test]
    fn a_reported_component_stays_quiet_for_the_cooldown() {
        let w = watch();
        for t in 0..3 {
            w.record("kb", 500, t);
        }
        assert_eq!(w.record("kb", 500, 5), None, "inside the cool-down");
        w.record("kb", 500, 600_000);
        w.record("kb", 500, 600_001);
        assert!(
            w.record("kb", 500, 600_002).is_some(),
            "after the cool-down, with errors in the window again"
        );
    }

    #[test]
    fn components_are_counted_apart() {
        let w = watch();
        w.record("kb", 500, 0);
        w.record("kb", 500, 1);
        assert_eq!(w.record("chat", 500, 2), None);
        assert!(w.record("kb", 500, 3).is_some());
    }

    #[test]
    fn the_report_is_the_json_the_app_reads() {
        let report = ErrorReport {
            component: "kb".into(),
            window_s: 300,
            requests: 10,
            errors: 5,
            rate: 0.5,
            statuses: BTreeMap::from([(500, 5)]),
        };
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["statuses"]["500"], 5);
        assert_eq!(json["component"], "kb");
    }
}
