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

/// The frames of a fresh `perf/tools/mkpcap.py` capture of `flows` TCP flows (`mix`: `syn` or
/// `data`) towards VIP 198.18.100.1:80, written to a temporary file and read back (the replay
/// benches' traffic).
#[allow(dead_code)] // used by the replay benches, not by every bench that includes this module
pub fn capture(flows: u64, mix: &str) -> Vec<Vec<u8>> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("replay-bench-{}-{mix}-{flows}.pcap", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(root.join("perf/tools/mkpcap.py"))
        .arg(&out)
        .args(["--flows", &flows.to_string(), "--mix", mix])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs perf/tools/mkpcap.py");
    assert!(status.success(), "mkpcap.py failed");
    let bytes = std::fs::read(&out).expect("mkpcap.py wrote the capture");
    let _ = std::fs::remove_file(&out);
    let frames: Vec<Vec<u8>> = dataplane::pcap::records(&bytes).map(<[u8]>::to_vec).collect();
    assert!(!frames.is_empty(), "empty capture");
    frames
}
