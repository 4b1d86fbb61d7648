//! Pre-shared key files.
//!
//! As in spiped, the key file is any bytes (`-` reads standard input to EOF) and the key is
//! K = SHA-256(file contents), computed once at start-up. The same file therefore works for the
//! native protocol and for `--protocol spiped1`.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// K = SHA-256(key file). Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PreSharedKey([u8; 32]);

impl PreSharedKey {
    /// Hashes the raw bytes of a key file into K.
    pub fn from_file_bytes(bytes: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut k = [0u8; 32];
        k.copy_from_slice(d.as_ref());
        PreSharedKey(k)
    }

    /// The 32 bytes of K.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreSharedKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spiped's test suite uses `-k /dev/null`: K = SHA-256("").
    #[test]
    fn empty_key_file_hashes_to_sha256_of_nothing() {
        let k = PreSharedKey::from_file_bytes(b"");
        let hex: String = k.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
