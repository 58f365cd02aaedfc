//! The failed-authentication limiter: a budget of failures per client address, in-process.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};

/// How many clients [`FailureLimiter`] tracks at most, by default.
pub const DEFAULT_MAX_CLIENTS: usize = 65_536;

/// How many recorded failures run between two sweeps of clients whose budget is full
/// again.
const SWEEP_EVERY: u64 = 4096;

/// A budget of failed authentications: `burst` at once, then `per_minute` a minute.
///
/// Like [`Quota`](crate::Quota) it is a GCRA budget (a token bucket without a timer): a
/// full bucket holds `burst` failures and refills one failure every
/// `60 s / per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FailureQuota {
    /// Failures a minute, sustained.
    pub per_minute: NonZeroU32,
    /// Failures allowed at once from a full bucket.
    pub burst: NonZeroU32,
}

impl FailureQuota {
    /// A budget of `per_minute` failures a minute with a burst of `burst`.
    pub const fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self { per_minute, burst }
    }

    /// `n` failures a minute with a burst of `n` (what `--auth-failure-rate N` means).
    pub const fn per_minute(n: NonZeroU32) -> Self {
        Self::new(n, n)
    }

    /// The time one failure's worth of budget takes to come back: `60 s / per_minute`.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }
}

impl fmt::Display for FailureQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/min burst {}", self.per_minute, self.burst)
    }
}

/// The client a failure is counted against: an IPv4 address, or the /64 network of an
/// IPv6 address.
///
/// A site or a single host is usually given a whole IPv6 /64 and can pick any address
/// in it, so counting single IPv6 addresses would let one client spread its failures
/// over 2^64 budgets. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack
/// listener reports for IPv4 peers) count as the IPv4 address.
///
/// ```
/// use std::net::IpAddr;
/// use keygate_limits::ClientId;
///
/// let a: IpAddr = "2001:db8:1:2::7".parse()?;
/// let b: IpAddr = "2001:db8:1:2:ffff::1".parse()?;
/// assert_eq!(ClientId::from(a), ClientId::from(b));
/// assert_eq!(ClientId::from(a).to_string(), "2001:db8:1:2::/64");
///
/// let mapped: IpAddr = "::ffff:192.0.2.1".parse()?;
/// assert_eq!(ClientId::from(mapped).to_string(), "192.0.2.1");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(Client);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl From<IpAddr> for ClientId {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(Client::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(Client::V4(v4)),
                None => {
                    let prefix = u128::from(v6) >> 64;
                    // The upper 64 bits of a u128 always fit.
                    Self(Client::V6(u64::try_from(prefix).unwrap_or(u64::MAX)))
                }
            },
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Client::V4(v4) => write!(f, "{v4}"),
            Client::V6(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(prefix) << 64))
            }
        }
    }
}

/// Per-client budgets: the theoretical arrival time (GCRA) of each tracked client, in
/// nanoseconds since the limiter was made.
#[derive(Default)]
struct Table {
    tat: HashMap<ClientId, u64>,
    failures: u64,
}

/// A limiter of failed authentications per client address, in-process.
///
/// It protects the key store from floods of forged tokens: each one is a store read
/// before it can be refused. The HTTP layer asks [`FailureLimiter::blocked_for`]
/// **before** verifying a token and answers 429 while the client is over its budget;
/// it calls [`FailureLimiter::record_failure`] after a verification failed. Successful
/// authentications spend nothing, but while a client is over budget every token it
/// presents is refused, valid ones included: telling them apart would cost the store
/// read the limiter exists to save. Clients behind one NAT or proxy share one budget.
///
/// **Counting.** A client may fail `burst` times at once and then once every
/// [`FailureQuota::interval`]; while it may not fail once more it is blocked, for at
/// most one interval. Failures recorded while already blocked (requests that passed
/// the check before an earlier one failed) do not extend the block, so the budget is
/// exceeded at most by the verifications in flight each time it runs out.
///
/// **Memory.** At most [`FailureLimiter::capacity`] clients are tracked (default
/// [`DEFAULT_MAX_CLIENTS`], about 3 MiB; set with [`FailureLimiter::max_clients`]). A client whose budget is full again is
/// forgotten (it is indistinguishable from one never seen): every 4096 failures the
/// table is swept for them. When a new client finds the table full, those are dropped
/// first and, if that frees less than an eighth of the table, the clients with the
/// most budget left are dropped until an eighth is free, so the clients being refused
/// are the last to be forgotten and the sweep runs once per eighth of the table.
///
/// Budgets live in this process only: each instance protects its own store reads.
///
/// ```
/// use std::net::IpAddr;
/// use std::num::NonZeroU32;
/// use keygate_limits::{FailureLimiter, FailureQuota};
///
/// let limiter = FailureLimiter::new(FailureQuota::per_minute(NonZeroU32::MIN));
/// let client: IpAddr = "192.0.2.7".parse()?;
/// assert_eq!(limiter.blocked_for(client), None);
/// limiter.record_failure(client);
/// let wait = limiter.blocked_for(client).expect("one failure a minute, spent");
/// assert!(wait.as_secs() <= 60);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub struct FailureLimiter<C: Clock = DefaultClock> {
    quota: FailureQuota,
    /// `quota.interval()` in nanoseconds.
    interval: u64,
    /// How far ahead of now a client's arrival time may be while it may still fail once.
    tolerance: u64,
    max_clients: usize,
    clock: C,
    start: C::Instant,
    table: Mutex<Table>,
}

impl FailureLimiter<DefaultClock> {
    /// A limiter on the monotonic clock.
    pub fn new(quota: FailureQuota) -> Self {
        Self::with_clock(quota, DefaultClock::default())
    }
}

impl<C: Clock> FailureLimiter<C> {
    /// A limiter on the given clock (tests use
    /// [`FakeRelativeClock`](governor::clock::FakeRelativeClock)).
    pub fn with_clock(quota: FailureQuota, clock: C) -> Self {
        let interval = u64::try_from(quota.interval().as_nanos()).unwrap_or(u64::MAX);
        let tolerance = interval.saturating_mul(u64::from(quota.burst.get() - 1));
        Self {
            quota,
            interval,
            tolerance,
            max_clients: DEFAULT_MAX_CLIENTS,
            start: clock.now(),
            clock,
            table: Mutex::new(Table::default()),
        }
    }

    /// Tracks at most `clients` clients instead of [`DEFAULT_MAX_CLIENTS`] (`0` is
    /// taken as 1).
    #[must_use]
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients.max(1);
        self
    }

    /// The budget each client has.
    pub fn quota(&self) -> FailureQuota {
        self.quota
    }

    /// How many clients are tracked at most.
    pub fn capacity(&self) -> usize {
        self.max_clients
    }

    /// How many clients are tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().tat.len()
    }

    /// How long `ip`'s client must wait before its next authentication is looked at,
    /// or `None` when it may authenticate now. Spends nothing.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let now = self.now();
        let tat = *self.lock().tat.get(&ClientId::from(ip))?;
        // Blocked while one more failure would put the arrival time beyond the tolerance.
        let free_at = tat.checked_sub(self.tolerance)?;
        (free_at > now).then(|| Duration::from_nanos(free_at - now))
    }

    /// Counts one failed authentication of `ip`'s client. Returns `true` when this
    /// failure used the last of its budget: from now on it is refused until the budget
    /// refills (the moment to log it, once per block).
    pub fn record_failure(&self, ip: IpAddr) -> bool {
        let client = ClientId::from(ip);
        let now = self.now();
        let mut table = self.lock();
        table.failures += 1;
        if table.failures.is_multiple_of(SWEEP_EVERY) {
            table.tat.retain(|_, tat| *tat > now);
            table.tat.shrink_to_fit();
        }
        let tat = match table.tat.get(&client) {
            Some(&tat) => tat,
            None => {
                if table.tat.len() >= self.max_clients {
                    self.make_room(&mut table.tat, now);
                }
                now
            }
        };
        if tat > now.saturating_add(self.tolerance) {
            // Already blocked: a verification that started before the block failed.
            return false;
        }
        let next = tat.max(now).saturating_add(self.interval);
        table.tat.insert(client, next);
        next > now.saturating_add(self.tolerance)
    }

    /// Drops every client whose budget is full again, then, if that freed less than an
    /// eighth of the table, the clients with the most budget left (lowest arrival time).
    fn make_room(&self, tat: &mut HashMap<ClientId, u64>, now: u64) {
        tat.retain(|_, t| *t > now);
        let keep = self.max_clients - (self.max_clients / 8).max(1);
        if tat.len() <= keep {
            return;
        }
        let mut times: Vec<u64> = tat.values().copied().collect();
        let drop = times.len() - keep;
        let (_, threshold, _) = times.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        tat.retain(|_, t| *t > threshold);
    }

    /// Drops the state of every client whose budget is full again and returns the
    /// memory to the allocator.
    pub fn housekeep(&self) {
        let now = self.now();
        let mut table = self.lock();
        table.tat.retain(|_, tat| *tat > now);
        table.tat.shrink_to_fit();
    }

    fn now(&self) -> u64 {
        u64::from(self.clock.now().duration_since(self.start))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock> fmt::Debug for FailureLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("quota", &self.quota)
            .field("max_clients", &self.max_clients)
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn limiter(
        per_minute: u32,
        burst: u32,
    ) -> (FailureLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let quota = FailureQuota::new(nz(per_minute), nz(burst));
        (FailureLimiter::with_clock(quota, clock.clone()), clock)
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let (lim, clock) = limiter(60, 5);
        let client = ip("192.0.2.1");
        for n in 1..=5 {
            assert_eq!(lim.blocked_for(client), None, "failure {n} is looked at");
            assert_eq!(lim.record_failure(client), n == 5, "failure {n}");
        }
        assert_eq!(lim.blocked_for(client), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(400));
        assert_eq!(lim.blocked_for(client), Some(Duration::from_millis(600)));
        clock.advance(Duration::from_millis(600));
        assert_eq!(lim.blocked_for(client), None, "one interval later");
        assert!(lim.record_failure(client), "and spent again at once");
        assert_eq!(lim.blocked_for(client), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_sustained_rate_holds_over_a_long_run() {
        let (lim, clock) = limiter(120, 10);
        let client = ip("192.0.2.1");
        let mut looked_at = 0_u32;
        // One attempt every 10 ms for a minute: burst 10 + 120 in the minute.
        for _ in 0..6000 {
            if lim.blocked_for(client).is_none() {
                looked_at += 1;
                lim.record_failure(client);
            }
            clock.advance(Duration::from_millis(10));
        }
        assert!(looked_at.abs_diff(130) <= 1, "looked at {looked_at}");
    }

    #[test]
    fn failures_while_blocked_do_not_extend_the_block() {
        let (lim, _clock) = limiter(60, 2);
        let client = ip("192.0.2.1");
        lim.record_failure(client);
        assert!(lim.record_failure(client));
        for _ in 0..100 {
            assert!(!lim.record_failure(client));
        }
        assert_eq!(lim.blocked_for(client), Some(Duration::from_secs(1)));
    }

    #[test]
    fn clients_are_counted_apart_and_ipv6_per_64() {
        let (lim, _clock) = limiter(1, 1);
        lim.record_failure(ip("192.0.2.1"));
        assert!(lim.blocked_for(ip("192.0.2.1")).is_some());
        assert_eq!(lim.blocked_for(ip("192.0.2.2")), None);
        assert!(
            lim.blocked_for(ip("::ffff:192.0.2.1")).is_some(),
            "mapped IPv4 is IPv4"
        );

        lim.record_failure(ip("2001:db8:0:1::1"));
        assert!(lim.blocked_for(ip("2001:db8:0:1:abcd::9")).is_some());
        assert_eq!(lim.blocked_for(ip("2001:db8:0:2::1")), None);
        assert_eq!(lim.tracked(), 2);
    }

    #[test]
    fn a_full_budget_is_forgotten() {
        let (lim, clock) = limiter(60, 3);
        for n in 0..10u8 {
            lim.record_failure(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)));
        }
        assert_eq!(lim.tracked(), 10);
        clock.advance(Duration::from_secs(1));
        lim.housekeep();
        assert_eq!(lim.tracked(), 0, "one interval refills a single failure");
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_blocked_clients() {
        let (lim, clock) = limiter(1, 1);
        let lim = lim.max_clients(64);
        let blocked = ip("198.51.100.1");
        lim.record_failure(blocked);
        // A flood from many addresses, each failing once, later than `blocked`, but
        // with a budget of one a minute every one of them is blocked too.
        for n in 0..10_000u32 {
            clock.advance(Duration::from_millis(1));
            let [_, a, b, c] = n.to_be_bytes();
            lim.record_failure(IpAddr::V4(Ipv4Addr::new(10, a, b, c)));
            assert!(lim.tracked() <= 64, "tracked {}", lim.tracked());
        }
        // The oldest block has the least time left, so it went first: a bounded table
        // forgets someone, and it forgets the client closest to being let in anyway.
        assert_eq!(lim.blocked_for(blocked), None);
        let last = IpAddr::V4(Ipv4Addr::new(10, 0, 39, 15));
        assert!(lim.blocked_for(last).is_some(), "the latest are kept");
    }

    #[test]
    fn clients_with_budget_left_are_dropped_before_blocked_ones() {
        let (lim, _clock) = limiter(1, 3);
        let lim = lim.max_clients(8);
        let blocked = ip("198.51.100.1");
        for _ in 0..3 {
            lim.record_failure(blocked);
        }
        for n in 0..7u8 {
            lim.record_failure(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)));
        }
        assert_eq!(lim.tracked(), 8);
        lim.record_failure(ip("10.0.1.1"));
        assert!(lim.tracked() <= 8);
        assert!(
            lim.blocked_for(blocked).is_some(),
            "the blocked client is kept"
        );
    }

    #[test]
    fn display_and_debug() {
        let (lim, _clock) = limiter(30, 10);
        assert_eq!(lim.quota().to_string(), "30/min burst 10");
        assert_eq!(lim.quota().interval(), Duration::from_secs(2));
        let debug = format!("{lim:?}");
        assert!(debug.contains("max_clients: 65536"), "{debug}");
    }
}
