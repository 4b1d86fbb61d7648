//! Maglev table properties: balance, determinism across instances, weights, and disruption when
//! a backend is removed (research `l4lb.md` §2 and §3.1; Katran `maglev_integration_test.cpp`).

use std::net::{IpAddr, Ipv4Addr};

use dataplane::maglev::{backend_key, MaglevBackend, MaglevTable, NO_BACKEND};

/// `n` backends 10.x.y.z with unit weight, index = position.
fn backends(n: usize) -> Vec<MaglevBackend> {
    (0..n)
        .map(|i| {
            let a = IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8));
            MaglevBackend { key: backend_key(a), weight: 1, index: i as u16 }
        })
        .collect()
}

/// Slots per backend index.
fn shares(t: &MaglevTable, n: usize) -> Vec<usize> {
    let mut c = vec![0usize; n];
    for &s in t.slots() {
        assert_ne!(s, NO_BACKEND, "a table with backends has no holes");
        c[s as usize] += 1;
    }
    c
}

/// Balance (paper §3.4: M ≥ 100·N keeps every backend within 1 % of M/N): for N = 10, 100 and
/// 650 at M = 65537 the largest and smallest share differ from M/N by at most 1 %.
#[test]
fn balance_within_one_percent() {
    let m = 65537u32;
    for n in [10usize, 100, 650] {
        let t = MaglevTable::build(&backends(n), m).unwrap();
        let c = shares(&t, n);
        let ideal = f64::from(m) / n as f64;
        let max = *c.iter().max().unwrap() as f64;
        let min = *c.iter().min().unwrap() as f64;
        println!("M={m} N={n}: min {min} max {max} ideal {ideal:.1}");
        assert!((max - ideal) / ideal <= 0.01, "N={n}: max share {max} vs {ideal}");
        assert!((ideal - min) / ideal <= 0.01, "N={n}: min share {min} vs {ideal}");
    }
}

/// Determinism: two "instances" given the same backends in different orders (and with
/// different caller indices) build tables that map every slot to the same backend identity.
#[test]
fn identical_tables_regardless_of_input_order() {
    let a = backends(100);
    let mut b = a.clone();
    // A fixed pseudo-random shuffle (seeded LCG), then re-index as a different config order would.
    let mut seed = 12345u64;
    for i in (1..b.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        b.swap(i, (seed >> 33) as usize % (i + 1));
    }
    for (i, be) in b.iter_mut().enumerate() {
        be.index = i as u16;
    }
    let ta = MaglevTable::build(&a, 65537).unwrap();
    let tb = MaglevTable::build(&b, 65537).unwrap();
    let ka: Vec<[u8; 16]> = ta.slots().iter().map(|&s| a[s as usize].key).collect();
    let kb: Vec<[u8; 16]> = tb.slots().iter().map(|&s| b[s as usize].key).collect();
    assert!(ka == kb, "tables differ by input order");
    // And rebuilding is bit-identical.
    assert_eq!(ta, MaglevTable::build(&a, 65537).unwrap());
}

/// Weights: shares are proportional to weight (Katran v2 smooth weighting), within 1 % of the
/// ideal; weight 0 gets no slot.
#[test]
fn weights_are_proportional() {
    let mut b = backends(5);
    let weights = [1u32, 2, 3, 4, 0];
    for (be, w) in b.iter_mut().zip(weights) {
        be.weight = w;
    }
    let m = 65537u32;
    let t = MaglevTable::build(&b, m).unwrap();
    let mut c = [0usize; 5];
    for &s in t.slots() {
        c[s as usize] += 1;
    }
    let total: u32 = weights.iter().sum();
    for (i, w) in weights.iter().enumerate() {
        let ideal = f64::from(m) * f64::from(*w) / f64::from(total);
        println!("weight {w}: {} slots, ideal {ideal:.1}", c[i]);
        if *w == 0 {
            assert_eq!(c[i], 0);
        } else {
            assert!((c[i] as f64 - ideal).abs() / ideal <= 0.01, "weight {w}: {} vs {ideal}", c[i]);
        }
    }
}

/// Disruption when one backend is removed. The research reproduction (`l4lb.md` §2, M prime,
/// unit weights, one of N removed) reports "unrelated churn" — table entries that changed
/// although their backend stayed — of 0.55 % of the table at (M = 65537, N = 100), 0.61 % at
/// (65537, 1000) and 0.33 % at (655373, 1000). We measure the same quantity with our hash,
/// averaged over removing each of 5 different backends, print it together with the share of
/// the surviving backends' slots that moved, and require it to stay below the published figure
/// plus 10 %. The margin is there because the published figures are single removals with a
/// different hash: at N = 100 our individual removals spread from 0.54 % to 0.62 % (mean
/// 0.58 %), so 0.55 % is one draw from that spread, not a bound. At N = 1000 the spread is
/// small and we measure 0.59 % and 0.32 %, below the published 0.61 % and 0.33 %.
#[test]
fn removal_moves_few_unrelated_slots() {
    // (M, N, unrelated churn reported in l4lb.md §2, as a fraction of all entries)
    let cases = [(65537u32, 100usize, 0.0055f64), (65537, 1000, 0.0061), (655373, 1000, 0.0033)];
    for (m, n, reported) in cases {
        let all = backends(n);
        let before = MaglevTable::build(&all, m).unwrap();
        let trials = 5;
        let mut unrelated_sum = 0.0;
        let mut moved_share_sum = 0.0;
        for k in 0..trials {
            let removed = (k * 7919) % n;
            let rest: Vec<MaglevBackend> = all.iter().copied().filter(|b| b.index as usize != removed).collect();
            let after = MaglevTable::build(&rest, m).unwrap();
            let mut kept = 0usize;
            let mut moved = 0usize;
            for (x, y) in before.slots().iter().zip(after.slots()) {
                if *x as usize == removed {
                    assert_ne!(*y as usize, removed);
                    continue;
                }
                kept += 1;
                if x != y {
                    moved += 1;
                }
            }
            unrelated_sum += moved as f64 / f64::from(m);
            moved_share_sum += moved as f64 / kept as f64;
        }
        let unrelated = unrelated_sum / trials as f64;
        let moved_share = moved_share_sum / trials as f64;
        println!(
            "M={m} N={n}: unrelated churn {:.3} % of the table ({:.3} % of surviving backends' slots moved); l4lb.md §2 reports {:.2} %",
            unrelated * 100.0,
            moved_share * 100.0,
            reported * 100.0
        );
        assert!(unrelated < reported * 1.10, "M={m} N={n}: {unrelated} >= {reported} + 10 %");
        // The disruption a removal causes is dominated by the removed backend's own 1/N share.
        assert!(unrelated < 1.0 / n as f64 + 0.01);
    }
}

/// Every backend of a removed set stays out, and every slot is filled (no holes) after removal.
#[test]
fn removed_backend_owns_nothing() {
    let all = backends(10);
    let rest: Vec<MaglevBackend> = all.iter().copied().filter(|b| b.index != 3).collect();
    let t = MaglevTable::build(&rest, 251).unwrap();
    assert!(t.slots().iter().all(|&s| s != 3 && s != NO_BACKEND));
}
