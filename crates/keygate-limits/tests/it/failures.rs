use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use keygate_limits::{ClientId, FailureLimiter, FailureQuota, FakeRelativeClock};

use crate::nz;

#[test]
fn concurrent_failures_of_one_client_spend_exactly_its_burst() {
    let clock = FakeRelativeClock::default();
    let limiter = Arc::new(FailureLimiter::with_clock(
        FailureQuota::per_minute(nz(50)),
        clock,
    ));
    let client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..100 {
                    if limiter.record_failure(client) {
                        last += 1;
                    }
                }
                last
            })
        })
        .collect();
    let exhausted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        exhausted, 1,
        "exactly one failure used the last of the budget"
    );
    let wait = limiter.blocked_for(client).expect("blocked");
    assert_eq!(wait, Duration::from_millis(1200), "one interval: 60 s / 50");
}

#[test]
fn a_flood_of_ipv6_addresses_in_one_64_is_one_client() {
    let limiter = FailureLimiter::new(FailureQuota::per_minute(nz(3)));
    let base = u128::from("2001:db8:5:6::".parse::<Ipv6Addr>().unwrap());
    for n in 0..1000u128 {
        let ip = IpAddr::V6(Ipv6Addr::from(base | (n * 7919)));
        if limiter.blocked_for(ip).is_none() {
            limiter.record_failure(ip);
        }
    }
    assert_eq!(limiter.tracked(), 1);
    let other = IpAddr::V6("2001:db8:5:7::1".parse().unwrap());
    assert_eq!(
        limiter.blocked_for(other),
        None,
        "the next /64 is another client"
    );
    assert_eq!(
        ClientId::from(IpAddr::V6(Ipv6Addr::from(base | 1))).to_string(),
        "2001:db8:5:6::/64"
    );
}
