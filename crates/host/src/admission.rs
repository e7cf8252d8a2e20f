//! Admission: how many requests each component runs at once, and the host in total.
//!
//! Every instance serves one request at a time (docs/adr/0011), so a component's in-flight
//! requests are its busy instances. A permit per request bounds them per component (heavier
//! components, whose memory image is large, get fewer) and for the whole host; a request
//! that finds no permit within the wait is refused with 503 instead of queueing forever or
//! exhausting memory. The permit lives as long as the response body, because an instance
//! streaming its answer is still busy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    /// Requests (and so instances) one component runs at once, at most.
    pub max_per_component: usize,
    /// Requests from clients the host runs at once. Requests components send to each other
    /// are bounded only per component: counting them here could starve the callee of the
    /// permits its callers hold.
    pub max_external: usize,
    /// Memory the instances of one component may map at once: a component whose image is
    /// large (the kb's pre-initialised snapshot holds the model) gets `budget / image` slots.
    pub instance_memory_budget: u64,
    /// Fewest slots a component gets, whatever its size.
    pub min_per_component: usize,
    /// How long a request waits for a slot before it is refused.
    pub wait: Duration,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            max_per_component: 64,
            max_external: 256,
            instance_memory_budget: 1 << 30,
            min_per_component: 2,
            wait: Duration::from_secs(10),
        }
    }
}

impl AdmissionSettings {
    /// Slots for a component whose memory image is `image_bytes`.
    pub fn slots_for(&self, image_bytes: u64) -> usize {
        let by_memory = self.instance_memory_budget / image_bytes.max(1);
        (by_memory as usize).clamp(self.min_per_component, self.max_per_component)
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The component already runs `limit` requests.
    ComponentBusy { limit: usize },
    /// The host already runs `limit` client requests.
    HostBusy { limit: usize },
}

/// Held while a request runs; dropping it frees the slot.
pub struct Permit {
    _component: OwnedSemaphorePermit,
    _external: Option<OwnedSemaphorePermit>,
}

pub struct Admission {
    settings: AdmissionSettings,
    external: Arc<Semaphore>,
    components: HashMap<String, (usize, Arc<Semaphore>)>,
}

impl Admission {
    /// `components`: each component's id and memory image size.
    pub fn new(
        settings: AdmissionSettings,
        components: impl IntoIterator<Item = (String, u64)>,
    ) -> Self {
        let components = components
            .into_iter()
            .map(|(id, image)| {
                let slots = settings.slots_for(image);
                (id, (slots, Arc::new(Semaphore::new(slots))))
            })
            .collect();
        Self {
            settings,
            external: Arc::new(Semaphore::new(settings.max_external)),
            components,
        }
    }

    /// The slots `component` has (None for a component this host does not know).
    pub fn slots(&self, component: &str) -> Option<usize> {
        self.components.get(component).map(|(slots, _)| *slots)
    }

    /// Each component with its slots and the requests it runs now, for metrics.
    pub fn usage(&self) -> impl Iterator<Item = (&str, usize, usize)> {
        self.components
            .iter()
            .map(|(id, (slots, sem))| (id.as_str(), *slots, slots - sem.available_permits()))
    }

    /// Requests `component` runs now.
    pub fn in_flight(&self, component: &str) -> usize {
        self.components
            .get(component)
            .map(|(slots, sem)| slots - sem.available_permits())
            .unwrap_or(0)
    }

    /// Waits up to the configured time for a slot for `component`; `external` requests also
    /// need one of the host's client slots.
    pub async fn admit(&self, component: &str, external: bool) -> Result<Permit, Refused> {
        let wait = self.settings.wait;
        let external = if external {
            let limit = self.settings.max_external;
            Some(
                acquire(&self.external, wait)
                    .await
                    .ok_or(Refused::HostBusy { limit })?,
            )
        } else {
            None
        };
        let Some((limit, semaphore)) = self.components.get(component) else {
            // Unknown components are answered 404 by the caller; nothing to bound.
            let spare = Arc::new(Semaphore::new(1));
            let permit = spare
                .try_acquire_owned()
                .expect("a fresh semaphore has a permit");
            return Ok(Permit {
                _component: permit,
                _external: external,
            });
        };
        let component = acquire(semaphore, wait)
            .await
            .ok_or(Refused::ComponentBusy { limit: *limit })?;
        Ok(Permit {
            _component: component,
            _external: external,
        })
    }
}

async fn acquire(semaphore: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = semaphore.clone().try_acquire_owned() {
        return Some(permit);
    }
    match tokio::time::timeout(wait, semaphore.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Some(permit),
        // Timed out, or the semaphore closed (never: it lives as long as the host).
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AdmissionSettings {
        AdmissionSettings {
            max_per_component: 8,
            max_external: 3,
            instance_memory_budget: 1000,
            min_per_component: 2,
            wait: Duration::from_millis(20),
        }
    }

    #[test]
    fn heavy_components_get_fewer_slots_within_the_bounds() {
        let s = settings();
        assert_eq!(
            s.slots_for(10),
            8,
            "small images are capped by max_per_component"
        );
        assert_eq!(s.slots_for(250), 4);
        assert_eq!(s.slots_for(900), 2, "never fewer than min_per_component");
        assert_eq!(s.slots_for(0), 8);
    }

    #[tokio::test]
    async fn a_full_component_refuses_after_the_wait_and_frees_slots_on_drop() {
        let admission = Admission::new(settings(), [("kb".to_string(), 500)]);
        assert_eq!(admission.slots("kb"), Some(2));
        let a = admission.admit("kb", false).await.expect("first slot");
        let _b = admission.admit("kb", false).await.expect("second slot");
        assert_eq!(admission.in_flight("kb"), 2);
        assert_eq!(
            admission.admit("kb", false).await.err(),
            Some(Refused::ComponentBusy { limit: 2 })
        );
        drop(a);
        assert!(
            admission.admit("kb", false).await.is_ok(),
            "a dropped permit frees its slot"
        );
    }

    #[tokio::test]
    async fn client_requests_are_bounded_in_total_but_internal_ones_are_not() {
        let admission = Admission::new(settings(), [("a".to_string(), 1), ("b".to_string(), 1)]);
        let _held: Vec<_> = futures::future::join_all(
            (0..3).map(|i| admission.admit(if i % 2 == 0 { "a" } else { "b" }, true)),
        )
        .await
        .into_iter()
        .map(|p| p.expect("within max_external"))
        .collect();
        assert_eq!(
            admission.admit("b", true).await.err(),
            Some(Refused::HostBusy { limit: 3 })
        );
        assert!(
            admission.admit("b", false).await.is_ok(),
            "a component's request to another is not counted against clients"
        );
    }
}
