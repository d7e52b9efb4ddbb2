//! Per-instance memory of single-use values (authorization codes, rotated refresh tokens).
//!
//! The built-in authorization server keeps no shared state, so "single use" cannot be enforced
//! across instances: behind a round-robin balancer, a code could be redeemed once on each instance
//! within its lifetime. What bounds that:
//! - a code lives `auth.oauth.builtin.code_ttl` (60 s by default) and each instance redeems it at most
//!   once (this memory), so at most N redemptions in that window with N instances;
//! - redeeming needs the PKCE verifier (S256 only), which never leaves the client that started the
//!   flow: a code intercepted on its way back (a logged redirect, a malicious app on the same
//!   loopback port) is useless without it (RFC 7636 §1, OAuth 2.1 §7.5.1). The extra redemptions are
//!   therefore only ever available to the legitimate client itself.
//!
//! For refresh tokens the same memory turns rotation into reuse detection on the instance that saw
//! the first use; across instances a stolen refresh token stays usable until its family's absolute
//! expiry or until the user's password changes (the revocation lever). Memory is bounded: the
//! oldest entries are forgotten first, and expired ones as soon as they are seen.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Values seen once, until their expiry.
pub struct UsedOnce {
    inner: Mutex<Seen>,
    capacity: usize,
}

#[derive(Default)]
struct Seen {
    expiry: HashMap<String, i64>,
    order: VecDeque<String>,
}

impl UsedOnce {
    pub fn new(capacity: usize) -> UsedOnce {
        UsedOnce {
            inner: Mutex::new(Seen::default()),
            capacity: capacity.max(1),
        }
    }

    /// Records `id` (valid until `expires_at`, Unix seconds): `true` the first time this instance
    /// sees it, `false` for a replay.
    pub fn first_use(&self, id: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(expiry) = seen.expiry.get_mut(id) {
            // Expired but not yet forgotten: a value past its expiry is refused by its own check
            // before it gets here, so accepting it again here grants nothing.
            let first = *expiry <= now;
            *expiry = expires_at;
            return first;
        }
        // Forget what expired (oldest first, so this stops at the first live entry in most cases),
        // then the oldest entries while full.
        while let Some(oldest) = seen.order.front().cloned() {
            let expired = seen.expiry.get(&oldest).is_none_or(|exp| *exp <= now);
            if !expired && seen.order.len() < self.capacity {
                break;
            }
            seen.order.pop_front();
            seen.expiry.remove(&oldest);
        }
        seen.expiry.insert(id.to_string(), expires_at);
        seen.order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_accepted_once_until_it_expires() {
        let used = UsedOnce::new(10);
        assert!(used.first_use("a", 100, 0));
        assert!(!used.first_use("a", 100, 50));
        assert!(used.first_use("b", 100, 50));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let used = UsedOnce::new(2);
        assert!(used.first_use("a", 100, 0));
        assert!(used.first_use("b", 100, 0));
        assert!(used.first_use("c", 100, 0));
        // "a" was forgotten to make room; "c" is remembered.
        assert!(used.first_use("a", 100, 0));
        assert!(!used.first_use("c", 100, 0));
        assert!(used.inner.lock().unwrap().order.len() <= 2);
    }
}
