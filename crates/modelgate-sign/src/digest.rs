//! The hash functions model_signing signs files with, and the root digest.

use sha2::{Digest, Sha256};

/// A per-file (or per-shard) hash algorithm of the OpenSSF Model Signing serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256 (the default).
    Sha256,
    /// BLAKE2b-512 (recorded as `blake2b`).
    Blake2b,
    /// BLAKE3, 256-bit output.
    Blake3,
}

impl HashAlg {
    /// Parses the serialization's `hash_type` (`blake2` is what the Python API calls BLAKE2b).
    pub fn from_name(name: &str) -> Option<HashAlg> {
        match name {
            "sha256" => Some(HashAlg::Sha256),
            "blake2b" | "blake2" => Some(HashAlg::Blake2b),
            "blake3" => Some(HashAlg::Blake3),
            _ => None,
        }
    }

    /// The name written in statements.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Blake2b => "blake2b",
            HashAlg::Blake3 => "blake3",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 | HashAlg::Blake3 => 32,
            HashAlg::Blake2b => 64,
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            HashAlg::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlg::Blake2b => Hasher::Blake2b(blake2::Blake2b512::new()),
            HashAlg::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
}

/// A running hash of one of the [`HashAlg`]s.
pub(crate) enum Hasher {
    Sha256(Sha256),
    Blake2b(blake2::Blake2b512),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Blake2b(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Blake2b(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        }
    }
}

/// The OpenSSF Model Signing root digest: SHA-256 over the raw digests, in the order given (the
/// order of the statement's resources; signers sort them by path components). Always SHA-256,
/// whatever the per-file algorithm.
pub fn oms_root_digest<'a>(digests: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in digests {
        h.update(d);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let hash = |alg: HashAlg| {
            let mut h = alg.hasher();
            h.update(b"abc");
            crate::hex(&h.finish())
        };
        assert_eq!(hash(HashAlg::Sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(
            hash(HashAlg::Blake2b)
                .starts_with("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1")
        );
        assert_eq!(hash(HashAlg::Blake3), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
        assert_eq!(HashAlg::from_name("blake2"), Some(HashAlg::Blake2b));
        assert_eq!(HashAlg::from_name("md5"), None);
    }
}
