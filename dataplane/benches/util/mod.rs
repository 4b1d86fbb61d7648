//! Shared by the `harness = false` benches: argument parsing and the one machine-readable result
//! line `perf/run.sh` parses.
//!
//! Every bench prints, per case, exactly one line
//! `BENCH <bench> <key>=<value> ... median=<v> min=<v> max=<v> unit=<unit> samples=<n>`
//! (space separated, no spaces inside values). Medians of several timed samples, with min and
//! max, because the machines these run on have slow periods; no criterion (plain
//! `std::time::Instant` is enough for millisecond-scale work and keeps the dependency list short).

use std::time::Instant;

/// The value of `--name VALUE` on the command line (cargo bench also passes `--bench`, which is
/// ignored), or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// Runs `f` once untimed (warm-up: page faults, caches), then `samples` times, and returns the
/// durations in seconds, sorted.
pub fn time_samples(samples: usize, mut f: impl FnMut()) -> Vec<f64> {
    f();
    let mut v: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Median of a sorted, non-empty slice.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Prints the result line of one case. `values` are sorted; `labels` are the case's parameters.
pub fn report(bench: &str, labels: &[(&str, String)], values: &[f64], unit: &str) {
    let mut line = format!("BENCH {bench}");
    for (k, v) in labels {
        line.push_str(&format!(" {k}={v}"));
    }
    line.push_str(&format!(
        " median={:.6} min={:.6} max={:.6} unit={unit} samples={}",
        median(values),
        values[0],
        values[values.len() - 1],
        values.len()
    ));
    println!("{line}");
}
