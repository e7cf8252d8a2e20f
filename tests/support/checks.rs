//! Several named checks against one host: every check runs even when an earlier one fails,
//! and the test fails at the end listing all failures (with the host's log).

use crate::TestHost;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub struct Checks {
    name: String,
    failures: Vec<String>,
    passed: usize,
}

impl Checks {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            failures: Vec::new(),
            passed: 0,
        }
    }

    /// Runs one check; a panic inside it is recorded as this check's failure.
    pub fn check(&mut self, name: &str, f: impl FnOnce()) {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => {
                self.passed += 1;
                eprintln!("[{}] ok   {name}", self.name);
            }
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(non-string panic)".to_string());
                eprintln!("[{}] FAIL {name}: {message}", self.name);
                self.failures.push(format!("{name}: {message}"));
            }
        }
    }

    /// Fails the test if any check failed, printing the host's output first.
    pub fn finish(self, host: Option<&TestHost>) {
        if self.failures.is_empty() {
            eprintln!("[{}] all {} checks passed", self.name, self.passed);
            return;
        }
        if let Some(host) = host {
            eprintln!(
                "----- host output -----\n{}\n-----------------------",
                host.output()
            );
        }
        panic!(
            "[{}] {} of {} checks failed:\n  - {}",
            self.name,
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n  - ")
        );
    }
}
