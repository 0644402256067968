//! A ticket's token: a JWS in compact form (RFC 7515) signed with the show's Ed25519 key
//! (`alg: EdDSA`, RFC 8037), the key's `kid` in its header, and short claims — the
//! ticket, the show, the seat and a not-before — so that any JOSE or Ed25519 library
//! checks it with the show's public key alone, and a QR code of it stays small.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a ticket's token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The ticket's id.
    pub tid: String,
    /// The show (the contract's `eventId`).
    pub ev: i64,
    /// The seat or standing place.
    pub seat: i64,
    /// Not before: seconds since the Unix epoch.
    pub nbf: i64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

/// The `alg` of every token.
pub const ALG: &str = "EdDSA";

/// A new signing key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// A key's id: the start of its public key's SHA-256, base64url (11 characters).
pub fn kid(key: &VerifyingKey) -> String {
    B64.encode(&Sha256::digest(key.as_bytes())[..8])
}

pub fn encode_key(bytes: &[u8; 32]) -> String {
    B64.encode(bytes)
}

pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    B64.decode(text).ok()?.try_into().ok()
}

/// A signing key as stored (its 32 bytes, base64url).
pub fn signing_key(secret: &str) -> Option<SigningKey> {
    decode_key(secret).map(|bytes| SigningKey::from_bytes(&bytes))
}

/// The compact JWS of `claims`, signed by `key` under `kid`.
pub fn sign(key: &SigningKey, kid: &str, claims: &Claims) -> String {
    let header = serde_json::to_vec(&Header { alg: ALG.to_owned(), kid: kid.to_owned() }).expect("a header serializes");
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature.to_bytes()))
}

/// A token split, its header read: what it claims to be signed with, before the check.
pub struct Unverified<'a> {
    pub kid: String,
    input: &'a str,
    payload: &'a str,
    signature: Signature,
}

/// Splits a compact JWS and reads its header; `None` when it is not one of ours.
pub fn parse(token: &str) -> Option<Unverified<'_>> {
    let (input, signature) = token.rsplit_once('.')?;
    let (header, payload) = input.split_once('.')?;
    let header: Header = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
    if header.alg != ALG {
        return None;
    }
    let signature = Signature::from_slice(&B64.decode(signature).ok()?).ok()?;
    Some(Unverified { kid: header.kid, input, payload, signature })
}

impl Unverified<'_> {
    /// The claims, if `key` signed them.
    pub fn verify(&self, key: &VerifyingKey) -> Option<Claims> {
        key.verify(self.input.as_bytes(), &self.signature).ok()?;
        serde_json::from_slice(&B64.decode(self.payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims { tid: "AbCdEfGhIjKl".into(), ev: 4, seat: 1234, nbf: 1_765_000_000 }
    }

    #[test]
    fn a_token_verifies_with_the_public_key_and_is_small() {
        let key = generate();
        let kid = kid(&key.verifying_key());
        let token = sign(&key, &kid, &claims());
        // About 190 characters: a QR code of version 10 (57 × 57 modules, 213 bytes at
        // error correction M), which a phone reads from paper.
        assert!(token.len() <= 213, "{} characters: {token}", token.len());
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.kid, kid);
        assert_eq!(parsed.verify(&key.verifying_key()), Some(claims()));
        assert_eq!(parsed.verify(&generate().verifying_key()), None, "another key");
    }

    /// What any JOSE library does: decode the header, verify the Ed25519 signature over
    /// `b64(header).b64(payload)` — here jsonwebtoken's, with the public key alone.
    #[test]
    fn a_standard_jose_library_verifies_it() {
        let key = generate();
        let kid = kid(&key.verifying_key());
        let token = sign(&key, &kid, &claims());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let public =
            jsonwebtoken::DecodingKey::from_ed_components(&encode_key(key.verifying_key().as_bytes())).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let read = jsonwebtoken::decode::<Claims>(&token, &public, &validation).unwrap();
        assert_eq!(read.claims, claims());

        // One byte changed anywhere: refused, by it and by us.
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered == token {
                continue;
            }
            let ours = parse(&altered).and_then(|p| p.verify(&key.verifying_key()));
            assert_eq!(ours, None, "altered at {at}: {altered}");
            assert!(jsonwebtoken::decode::<Claims>(&altered, &public, &validation).is_err(), "altered at {at}");
        }
    }

    /// The offline check of a token (parse, signature, claims) on one core.
    #[test]
    #[ignore = "a benchmark: cargo test -p tickets --release -- --ignored --nocapture"]
    fn offline_verifications_per_second_on_one_core() {
        let key = generate();
        let (kid, public) = (kid(&key.verifying_key()), key.verifying_key());
        let tokens: Vec<String> = (0..1_000)
            .map(|i| sign(&key, &kid, &Claims { tid: format!("t{i:011}"), ev: 4, seat: i, nbf: 1_765_000_000 }))
            .collect();
        let started = std::time::Instant::now();
        let mut checked = 0u64;
        while started.elapsed() < std::time::Duration::from_secs(3) {
            for token in &tokens {
                assert!(parse(token).and_then(|p| p.verify(&public)).is_some());
                checked += 1;
            }
        }
        let rate = checked as f64 / started.elapsed().as_secs_f64();
        println!("offline verification: {checked} tokens in {:?}: {rate:.0}/s on one core", started.elapsed());
    }

    #[test]
    fn other_algorithms_and_garbage_are_not_tokens() {
        assert!(parse("").is_none());
        assert!(parse("a.b").is_none());
        assert!(parse("a.b.c").is_none());
        let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","kid":"x"}"#), B64.encode("{}"));
        assert!(parse(&none).is_none());
    }
}
