//! Build script of the root `dpdk-sys` package.
//!
//! Finds Debian's DPDK 22.11 with pkg-config, runs bindgen over `src/wrapper.h` with an `rte_`
//! allowlist, lets bindgen emit C wrappers for DPDK's `static inline` fast-path functions
//! (`wrap_static_fns`), compiles those wrappers plus `src/shim.c` (macros and thread-locals that
//! bindgen cannot reach), and links DPDK dynamically so EAL loads its PMDs itself.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const DPDK_MIN_VERSION: &str = "22.11";

/// The functions bound (and, for `static inline` ones, wrapped in C). Only what the data plane
/// and the perf tools call: every extra `static inline` family (rte_ring_*, rte_atomic*,
/// rte_spinlock_*, ...) adds a C wrapper to compile, and those dominated the build
/// (367 wrappers, 6-8 s at -O2, before this list; see docs/DPDK.md).
const FUNCTION_ALLOWLIST: &str = concat!(
    "shim_.*",
    "|rte_(eal|eth|pktmbuf|mbuf|mempool|lcore|socket|get_tsc|rdtsc|get_main|get_next|dev|log)_.*",
    "|rte_(strerror|version|exit|socket_id|lcore_id|lcore_count|pause|delay_us_block)",
);

/// Prints a build error that names the Debian package to install, then stops the build.
fn fail(msg: &str, package: &str) -> ! {
    eprintln!(
        "\nerror: dpdk-sys: {msg}\n  fix: apt-get install -y {package}\n  \
         (all build dependencies: apt-get install -y libdpdk-dev dpdk-dev pkg-config libclang-dev clang)\n"
    );
    std::process::exit(1);
}

/// `pkg-config --cflags libdpdk`, taken raw: the pkg-config crate does not hand back
/// `-include rte_config.h` and `-march=...`, and bindgen and the C wrappers must both see them.
fn dpdk_cflags() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run pkg-config ({e})"), "pkg-config"));
    if !out.status.success() {
        fail(
            "pkg-config does not know libdpdk (the DPDK development files are missing)",
            "libdpdk-dev",
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    for f in ["build.rs", "src/wrapper.h", "src/shim.h", "src/shim.c"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let src = dir.join("src");

    // Emits rustc-link-lib for every librte_*; rustc links --as-needed, so only the used ones stay.
    match pkg_config::Config::new()
        .atleast_version(DPDK_MIN_VERSION)
        .probe("libdpdk")
    {
        Ok(_) => {}
        Err(pkg_config::Error::Command { command, cause }) => fail(
            &format!("cannot run `{command}` ({cause})"),
            "pkg-config",
        ),
        Err(e) => fail(
            &format!("libdpdk >= {DPDK_MIN_VERSION} not found by pkg-config: {e}"),
            "libdpdk-dev",
        ),
    }
    let cflags = dpdk_cflags();

    // bindgen panics (instead of returning an error) when it cannot load libclang; turn both
    // into one message that names the package.
    std::panic::set_hook(Box::new(|_| {}));
    let generated = std::panic::catch_unwind(|| generate_bindings(&src, &cflags, &out));
    let _ = std::panic::take_hook();
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(
            &format!("bindgen failed over the DPDK headers ({e}); libclang or clang's builtin headers are missing or broken"),
            "libclang-dev",
        ),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            fail(
                &format!("bindgen could not run ({what}); libclang is not installed or LIBCLANG_PATH is wrong"),
                "libclang-dev",
            )
        }
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| panic!("cannot write bindings.rs into {}: {e}", out.display()));

    let mut cc = cc::Build::new();
    for f in &cflags {
        cc.flag(f);
    }
    cc.include(&src)
        .include(&dir)
        .opt_level(2)
        .define("ALLOW_EXPERIMENTAL_API", None)
        .flag_if_supported("-Wno-deprecated-declarations")
        .flag_if_supported("-Wno-duplicate-decl-specifier")
        .file(out.join("static_fns.c"))
        .file(src.join("shim.c"))
        .compile("dpdk_shim");
}

/// Runs bindgen over `wrapper.h` + `shim.h` with the same cflags the C wrappers are compiled with.
fn generate_bindings(
    src: &Path,
    cflags: &[String],
    out: &Path,
) -> Result<bindgen::Bindings, bindgen::BindgenError> {
    bindgen::Builder::default()
        .header(src.join("wrapper.h").to_string_lossy())
        .header(src.join("shim.h").to_string_lossy())
        .clang_args(cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .allowlist_function(FUNCTION_ALLOWLIST)
        .allowlist_type("rte_.*")
        .allowlist_var("(RTE|rte)_.*")
        // Packed structs that contain aligned members (E0588) or break derives.
        .opaque_type("rte_arp_ipv4|rte_arp_hdr|rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_.*")
        .derive_default(true)
        .clang_macro_fallback()
        .prepend_enum_name(false)
        .layout_tests(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(out.join("static_fns"))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
}
