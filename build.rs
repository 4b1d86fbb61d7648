//! Build script of the root `dpdk-sys` package.
//!
//! Finds Debian's DPDK 22.11 with pkg-config, runs bindgen over `src/wrapper.h` with an `rte_`
//! allowlist, lets bindgen emit C wrappers for DPDK's `static inline` fast-path functions
//! (`wrap_static_fns`), compiles those wrappers plus `src/shim.c` (macros and thread-locals that
//! bindgen cannot reach), and links DPDK dynamically so EAL loads its PMDs itself.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const DPDK_MIN_VERSION: &str = "22.11";
const INSTALL_HINT: &str =
    "install Debian's DPDK and libclang: apt-get install -y libdpdk-dev dpdk-dev pkg-config libclang-dev clang";

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: dpdk-sys: {msg}\n  hint: {INSTALL_HINT}\n");
    std::process::exit(1);
}

/// `pkg-config --cflags libdpdk`, taken raw: the pkg-config crate does not hand back
/// `-include rte_config.h` and `-march=...`, and bindgen and the C wrappers must both see them.
fn dpdk_cflags() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run pkg-config ({e})")));
    if !out.status.success() {
        fail("pkg-config does not know libdpdk (DPDK development files missing)");
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
    if let Err(e) = pkg_config::Config::new()
        .atleast_version(DPDK_MIN_VERSION)
        .probe("libdpdk")
    {
        fail(&format!("libdpdk >= {DPDK_MIN_VERSION} not found by pkg-config: {e}"));
    }
    let cflags = dpdk_cflags();

    let bindings = bindgen::Builder::default()
        .header(src.join("wrapper.h").to_string_lossy())
        .header(src.join("shim.h").to_string_lossy())
        .clang_args(&cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .allowlist_function("(rte|shim)_.*")
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
        .generate();
    let bindings = match bindings {
        Ok(b) => b,
        Err(e) => fail(&format!("bindgen failed over the DPDK headers ({e}); is libclang installed?")),
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs into OUT_DIR");

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
