//! HS256 tokens signed here with the run's shared secret (SPEC §2 claims).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn sign(secret: &str, sub: &str, role: &str, company: &str, branch: Option<&str>, ttl_secs: u64) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + ttl_secs;
    let mut claims = serde_json::json!({"sub": sub, "role": role, "companyId": company, "exp": exp});
    if let (Some(b), Some(m)) = (branch, claims.as_object_mut()) {
        m.insert("branchId".into(), b.into());
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn shape_and_claims() {
        let t = super::sign("secret", "u", "cashier", "c", Some("b"), 60);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims = super::URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&claims).unwrap_or_default();
        assert_eq!(v["branchId"], "b");
        assert_eq!(v["role"], "cashier");
        assert!(v["exp"].as_u64().is_some_and(|e| e > 0));
    }
}
