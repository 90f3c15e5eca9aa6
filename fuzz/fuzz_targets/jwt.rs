//! JWT handshakes: `auth::jwt::Keys::verify` on the raw input and on a token whose claims
//! are the input; `parse_ttl`. No input can verify: the secret is in no input, so a token
//! that verifies would be a forgery.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-not-in-any-input-6b1f";

fuzz_target!(|input: &[u8]| {
    let keys = branchd::auth::jwt::Keys::new(SECRET);
    let token = String::from_utf8_lossy(input);
    assert!(keys.verify(&token).is_err(), "verified without the secret: {token}");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for alg in [r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"alg":"none"}"#] {
        let forged = format!("{}.{}.sig", b64.encode(alg), b64.encode(input));
        assert!(keys.verify(&forged).is_err(), "verified without the secret: {forged}");
        assert!(keys.verify(&format!("{}.{}.", b64.encode(alg), b64.encode(input))).is_err());
    }
    if let Some(ttl) = branchd::auth::jwt::parse_ttl(&token) {
        assert!(ttl > 0, "a TTL of {ttl} s");
    }
});
