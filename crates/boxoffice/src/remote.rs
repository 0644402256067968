//! Calls to a module in another process: the order module's pins, over HTTP.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use contract::ErrorBody;
use contract::holds::{Holds, PinError, PinRefused, PinRequest, Pinned};
use runtime::http::Unreachable;

/// The reservation module's pin call, made over HTTP with the operator's token (the
/// modules of one deployment share it). The call is idempotent on the order id, so a
/// retry after a timeout is safe.
pub struct HttpHolds {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl HttpHolds {
    pub fn new(base_url: &str, token: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        HttpHolds {
            url: format!("{}/ticketing/api/internal/pins", base_url.trim_end_matches('/')),
            token: token.to_owned(),
            http,
        }
    }
}

#[async_trait]
impl Holds for HttpHolds {
    async fn pin(&self, request: PinRequest) -> Result<Pinned, PinError> {
        let mut attempt = 0;
        let response = loop {
            let sent = self.http.post(&self.url).bearer_auth(&self.token).json(&request).send().await;
            match sent {
                Ok(r) => break r,
                Err(error) if attempt < 2 => {
                    tracing::warn!(%error, "pin call failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error).context(Unreachable("the reservation module")).into());
                }
            }
        };
        if response.status().is_success() {
            return Ok(response.json().await.context("a pin answer")?);
        }
        let status = response.status();
        let body: ErrorBody = response.json().await.with_context(|| format!("a pin refusal ({status})"))?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(anyhow::anyhow!("{}", body.message).context(Unreachable("the reservation module")).into());
        }
        if status.is_server_error() {
            return Err(anyhow::anyhow!("the reservation module failed: {}", body.message).into());
        }
        Err(PinRefused { code: body.code, message: body.message }.into())
    }
}
