//! `spiped {-e|-d} -s SOURCE -t TARGET -k KEYFILE [...]`: see `spiped --help` and docs/spiped-cli.md.
#![forbid(unsafe_code)]

fn main() {
    spiped::daemon::spiped_main()
}
