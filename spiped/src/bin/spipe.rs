//! `spipe -t TARGET -k KEYFILE [...]`: see `spipe --help` and docs/spiped-cli.md.
#![forbid(unsafe_code)]

fn main() {
    spiped::daemon::spipe_main()
}
