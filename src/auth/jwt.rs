//! HS256 JWTs: issue and verify. Only HS256 is accepted (`alg: none` and every other
//! algorithm are refused) and `exp` is required and enforced.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::{AuthError, Principal, Role};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub exp: i64,
    /// Issued at (Unix seconds; branchd writes milliseconds as a fraction, which RFC 7519's
    /// NumericDate allows, so a token issued just before a password change is told from one
    /// issued just after it). Tokens branchd issues always carry it; a token of a local user
    /// issued before that user's last password change is refused (SPEC §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<f64>,
}

/// Signs and verifies tokens with the configured secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Keys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, claims: &Claims) -> String {
        // HS256 signing of serialisable claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies a token and turns its claims into a principal.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_with_iat(token).map(|(p, _)| p)
    }

    /// As [`Keys::verify`], with the token's `iat` in Unix milliseconds (for the user gate).
    pub fn verify_with_iat(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidAlgorithm => AuthError::Invalid("only HS256 tokens are accepted".into()),
            ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
            ErrorKind::MissingRequiredClaim(c) => AuthError::Invalid(format!("missing claim {c}")),
            _ => AuthError::Invalid("malformed token".into()),
        })?;
        let c = data.claims;
        let role = Role::parse_user(&c.role).ok_or_else(|| AuthError::Forbidden(format!("unknown role {}", c.role)))?;
        if role != Role::SuperAdmin && c.company_id.as_deref().is_none_or(str::is_empty) {
            return Err(AuthError::Invalid("missing companyId".into()));
        }
        if role.branch_scoped() && c.branch_id.as_deref().is_none_or(str::is_empty) {
            return Err(AuthError::Forbidden(format!("{} needs a branchId", role.as_str())));
        }
        let principal = Principal {
            sub: c.sub,
            role,
            company_id: c.company_id.filter(|s| !s.is_empty()),
            branch_id: c.branch_id.filter(|s| !s.is_empty()),
            email: c.email,
            device_id: None,
            app_version: None,
        };
        Ok((principal, c.iat.filter(|t| t.is_finite()).map(|t| (t * 1000.0).round() as i64)))
    }
}

/// `iat` for a token issued now: Unix seconds with milliseconds.
pub fn now_iat() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Parses a TTL like `90s`, `15m`, `12h`, `7d` into seconds.
pub fn parse_ttl(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            role: "cashier".into(),
            company_id: Some("c".into()),
            branch_id: Some("b".into()),
            email: None,
            exp,
            iat: None,
        }
    }

    #[test]
    fn verifies_and_refuses() {
        let keys = Keys::new(b"secret");
        let future = chrono::Utc::now().timestamp() + 600;
        assert!(keys.verify(&keys.issue(&claims(future))).is_ok());
        assert_eq!(keys.verify(&keys.issue(&claims(1000))), Err(AuthError::Expired));
        let other = Keys::new(b"other");
        assert!(matches!(keys.verify(&other.issue(&claims(future))), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn refuses_alg_none() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = chrono::Utc::now().timestamp() + 600;
        let body = serde_json::to_vec(&claims(exp)).unwrap();
        let token = format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), b64.encode(body));
        assert!(matches!(Keys::new(b"secret").verify(&token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("1h"), Some(3600));
        assert_eq!(parse_ttl("30"), Some(30));
        assert_eq!(parse_ttl("0h"), None);
        assert_eq!(parse_ttl("1y"), None);
    }
}
