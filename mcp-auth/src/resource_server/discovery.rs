//! Finding the issuer's metadata (RFC 8414, then OpenID Connect discovery).

use std::time::Duration;

use reqwest::Url;

use super::fetch::Fetcher;
use crate::error::UpstreamError;
use crate::metadata::{AuthorizationServerMetadata, discovery_urls};

/// How long metadata stays fresh without a `Cache-Control` answer, and the cap.
const METADATA_TTL: Duration = Duration::from_secs(3600);
const METADATA_MIN_TTL: Duration = Duration::from_secs(60);
const METADATA_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Tries each discovery URL in turn. A `3xx`/`4xx` or a document for another
/// issuer moves on to the next; an unreachable server or a `5xx` stops (the
/// others are on the same origin).
pub(crate) async fn discover(
    fetcher: &Fetcher,
    issuer: &str,
) -> Result<(AuthorizationServerMetadata, Duration), UpstreamError> {
    let candidates = discovery_urls(issuer)
        .map_err(|e| UpstreamError::InvalidDocument { url: issuer.to_owned(), reason: e.to_string() })?;
    let mut tried = Vec::new();
    for candidate in candidates {
        let url = Url::parse(&candidate)
            .map_err(|e| UpstreamError::InvalidDocument { url: candidate.clone(), reason: e.to_string() })?;
        let fetched = match fetcher.get_json(&url).await {
            Ok(fetched) => fetched,
            Err(error @ UpstreamError::Status { status: 300..=499, .. }) => {
                tried.push(error.to_string());
                continue;
            }
            Err(error) => return Err(error),
        };
        let metadata: AuthorizationServerMetadata = match serde_json::from_value(fetched.json) {
            Ok(metadata) => metadata,
            Err(e) => {
                tried.push(
                    UpstreamError::InvalidDocument { url: candidate, reason: e.to_string() }.to_string(),
                );
                continue;
            }
        };
        // RFC 8414 §3.3 / OpenID Connect Discovery §4.3: the document must be
        // for exactly the issuer it was looked up for, or it is not used.
        if metadata.issuer != issuer {
            let found = metadata.issuer;
            tried.push(
                UpstreamError::IssuerMismatch { url: candidate, expected: issuer.to_owned(), found }
                    .to_string(),
            );
            continue;
        }
        let ttl = fetched.max_age.unwrap_or(METADATA_TTL).clamp(METADATA_MIN_TTL, METADATA_MAX_TTL);
        return Ok((metadata, ttl));
    }
    Err(UpstreamError::NoMetadata { issuer: issuer.to_owned(), tried })
}
