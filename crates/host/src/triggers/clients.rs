//! Open connections per client address, so one client cannot take every socket and
//! instance slot the host has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct ClientConnections {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it (the connection closed) uncounts it.
pub struct ClientSlot {
    clients: Arc<ClientConnections>,
    addr: IpAddr,
}

impl ClientConnections {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::default(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Counts a new connection from `addr`, or `None` when it already has `limit` open.
    pub fn open(self: &Arc<Self>, addr: IpAddr) -> Option<ClientSlot> {
        let mut open = self.lock();
        let count = open.entry(addr).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            addr,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        if let Some(count) = open.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_limit_is_refused_until_one_of_its_connections_closes() {
        let clients = ClientConnections::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = clients.open(a).expect("first");
        let _second = clients.open(a).expect("second");
        assert!(clients.open(a).is_none(), "third from the same address");
        assert!(
            clients.open(b).is_some(),
            "another address has its own count"
        );
        drop(first);
        assert!(
            clients.open(a).is_some(),
            "a closed connection frees its slot"
        );
    }
}
