//! Desktop-app license keys: 32 random bytes shown once; only their SHA-256 is stored
//! (the key is high-entropy, so a fast hash is the right tool).

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "bdl_";

pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = super::generate();
        assert_ne!(a, super::generate());
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_eq!(a.len(), 4 + 64);
    }
}
