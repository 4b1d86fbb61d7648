//! Pre-shared key files.
//!
//! As in spiped, the key file is any bytes (`-` reads standard input to EOF) and the key is
//! K = SHA-256(file contents), computed once at start-up. The same file therefore works for the
//! native protocol and for `--protocol spiped1`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::limits::{KEYGEN_BYTES, MAX_KEY_FILE, MIN_KEY_FILE};

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

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} is larger than {MAX_KEY_FILE} bytes; is this really a key file?")]
    TooLarge(PathBuf),
    #[error("refusing to overwrite existing file {0}; remove it first or choose another name")]
    Exists(PathBuf),
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("random number generator failed")]
    Rng,
}

/// A loaded key: K, and the size of the file it came from (to warn about short keys).
#[derive(Debug)]
pub struct LoadedKey {
    /// K = SHA-256(file contents).
    pub key: PreSharedKey,
    /// Bytes in the key file.
    pub file_len: usize,
}

impl LoadedKey {
    /// True when the file holds fewer than [`MIN_KEY_FILE`] bytes: too little entropy to be safe
    /// unless it was chosen with care. spiped accepts any file (its tests use /dev/null), so
    /// this is a warning, not an error.
    pub fn is_short(&self) -> bool {
        self.file_len < MIN_KEY_FILE
    }
}

/// Reads a key file (`-` = standard input, to EOF) and hashes it into K.
pub fn load(path: &Path) -> Result<LoadedKey, KeyError> {
    let mut bytes = Zeroizing::new(Vec::new());
    let err = |source| KeyError::Read { path: path.to_owned(), source };
    // Read one byte past the cap so an oversized file is detected without reading all of it.
    let cap = MAX_KEY_FILE as u64 + 1;
    if path == Path::new("-") {
        std::io::stdin().lock().take(cap).read_to_end(&mut bytes).map_err(err)?;
    } else {
        std::fs::File::open(path).and_then(|f| f.take(cap).read_to_end(&mut bytes)).map_err(err)?;
    }
    if bytes.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge(path.to_owned()));
    }
    Ok(LoadedKey { key: PreSharedKey::from_file_bytes(&bytes), file_len: bytes.len() })
}

/// Writes [`KEYGEN_BYTES`] fresh random bytes to a new file with mode 0600. Refuses to
/// overwrite anything that already exists (the file is created with `O_EXCL`).
pub fn generate(path: &Path, rng: &dyn ring::rand::SecureRandom) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Zeroizing::new([0u8; KEYGEN_BYTES]);
    rng.fill(&mut bytes[..]).map_err(|_| KeyError::Rng)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_owned()),
            _ => KeyError::Write { path: path.to_owned(), source },
        })?;
    let werr = |source| KeyError::Write { path: path.to_owned(), source };
    f.write_all(&bytes[..]).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    Ok(())
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

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("spiped-key-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A generated key is 32 bytes, mode 0600, loads as a full-length key, and a second
    /// generation to the same path is refused without touching the file.
    #[test]
    fn generate_then_load() {
        use std::os::unix::fs::PermissionsExt;
        let p = tmp("gen");
        let rng = ring::rand::SystemRandom::new();
        generate(&p, &rng).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEYGEN_BYTES as u64);
        let before = std::fs::read(&p).unwrap();
        let k = load(&p).unwrap();
        assert!(!k.is_short());
        assert_eq!(k.key.as_bytes(), PreSharedKey::from_file_bytes(&before).as_bytes());
        assert!(matches!(generate(&p, &rng), Err(KeyError::Exists(_))));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        std::fs::remove_file(&p).unwrap();
    }

    /// Missing files and oversized files are refused with their reason; short files load but
    /// are flagged.
    #[test]
    fn load_errors_and_short_keys() {
        let missing = tmp("missing");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }));
        assert!(e.to_string().contains("cannot read key file"), "{e}");
        let short = tmp("short");
        std::fs::write(&short, b"hunter2").unwrap();
        let k = load(&short).unwrap();
        assert!(k.is_short());
        assert_eq!(k.file_len, 7);
        let big = tmp("big");
        std::fs::write(&big, vec![0u8; MAX_KEY_FILE + 1]).unwrap();
        assert!(matches!(load(&big), Err(KeyError::TooLarge(_))));
        let _ = std::fs::remove_file(&short);
        let _ = std::fs::remove_file(&big);
    }
}
