//! Per-client rate limiting without remembering clients.
//!
//! The address is hashed with a key drawn at start and held only in memory,
//! then folded into one of a fixed number of buckets; governor's GCRA limiter
//! keeps state per bucket. Memory is bounded by the bucket count whatever the
//! traffic, nothing about an address survives a restart, and with an unknown
//! key no one can aim a flood at another client's bucket. IPv6 clients are
//! limited per /64, the block one subscriber usually holds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ring::hmac;
use ring::rand::SystemRandom;

/// A client's bucket: a keyed hash of its address (IPv6 per /64), mod a
/// fixed count. The key is drawn at start and held only in memory, so the
/// bucket says nothing about the address and cannot be aimed at.
#[derive(Debug)]
pub struct ClientBuckets {
    key: hmac::Key,
    count: u32,
}

impl ClientBuckets {
    /// `count` buckets (at least one) under a fresh random key.
    pub fn new(count: u32) -> Result<Self, ring::error::Unspecified> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())?;
        Ok(ClientBuckets {
            key,
            count: count.max(1),
        })
    }

    /// How many buckets there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The bucket of `ip`, below [`ClientBuckets::count`].
    pub fn of(&self, ip: IpAddr) -> u32 {
        let tag = match ip {
            IpAddr::V4(v4) => hmac::sign(&self.key, &v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => hmac::sign(&self.key, &v4.octets()),
                None => hmac::sign(&self.key, &v6.octets()[..8]),
            },
        };
        let mut first = [0u8; 4];
        first.copy_from_slice(&tag.as_ref()[..4]);
        u32::from_be_bytes(first) % self.count
    }
}

/// The per-client limiter.
#[derive(Debug)]
pub struct ClientLimiter {
    buckets: ClientBuckets,
    limiter: DefaultKeyedRateLimiter<u32>,
    clock: DefaultClock,
}

impl ClientLimiter {
    /// A limiter allowing `per_minute` requests per client with `burst` extra.
    pub fn new(
        per_minute: u32,
        burst: u32,
        buckets: u32,
    ) -> Result<Self, ring::error::Unspecified> {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Ok(ClientLimiter {
            buckets: ClientBuckets::new(buckets)?,
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// `Ok` if the client may go on, else how long it should wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&self.buckets.of(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops state of buckets that are full again; keeps memory low when idle.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_burst_is_told_to_wait_and_others_are_not() {
        let l = ClientLimiter::new(1, 2, 1 << 16).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        let wait = l.check(a).unwrap_err();
        assert!(wait > Duration::from_secs(1));
        assert!(l.check(b).is_ok());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = ClientLimiter::new(1, 1, 1 << 16).unwrap();
        assert!(l.check("2001:db8::1".parse().unwrap()).is_ok());
        assert!(l.check("2001:db8::2".parse().unwrap()).is_err());
    }
}
