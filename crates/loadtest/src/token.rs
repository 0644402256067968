//! The virtual users' bearer tokens, signed as the server signs its own (`boxoffice
//! token`): HS256 JWTs with the subject, the expiry in seconds since the epoch, and the
//! role `admin` for an operator only — the claims of `runtime::http::Claims`. A test of
//! the binary's checks that the server accepts them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

/// The role claim of an operator's token.
pub const ADMIN_ROLE: &str = "admin";

/// What a token says.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
}

/// Signs tokens with the server's key (its `--auth-secret`).
pub struct TokenSigner {
    key: EncodingKey,
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> Self {
        TokenSigner { key: EncodingKey::from_secret(key) }
    }

    /// A signed bearer token for `sub` (an operator's with `admin`), valid for `ttl`.
    pub fn issue(&self, sub: &str, admin: bool, ttl: Duration) -> String {
        self.sign(sub, admin.then_some(ADMIN_ROLE), ttl)
    }

    /// A signed bearer token for `sub` in another role (`scanner`, for the door).
    pub fn issue_with_role(&self, sub: &str, role: &str, ttl: Duration) -> String {
        self.sign(sub, Some(role), ttl)
    }

    fn sign(&self, sub: &str, role: Option<&str>, ttl: Duration) -> String {
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + ttl;
        let claims = Claims { sub, exp: exp.as_secs(), role };
        jsonwebtoken::encode(&Header::default(), &claims, &self.key).expect("HS256 signs any claims")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(token: &str, key: &[u8]) -> Option<serde_json::Value> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(str::to_owned).collect();
        let key = jsonwebtoken::DecodingKey::from_secret(key);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).ok().map(|t| t.claims)
    }

    #[test]
    fn a_token_is_an_hs256_jwt_with_subject_expiry_and_the_operators_role_only() {
        let signer = TokenSigner::new(b"secret");
        let buyer = signer.issue("alice", false, Duration::from_secs(60));
        let c = claims(&buyer, b"secret").expect("valid with the same key");
        assert_eq!(c["sub"], "alice");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!((now + 55..=now + 61).contains(&c["exp"].as_u64().unwrap()), "{c}");
        assert_eq!(c.as_object().unwrap().len(), 2, "no role for a buyer: {c}");
        assert!(claims(&buyer, b"another key").is_none());
        let operator = signer.issue("ops", true, Duration::from_secs(60));
        assert_eq!(claims(&operator, b"secret").unwrap()["role"], ADMIN_ROLE);
    }
}
