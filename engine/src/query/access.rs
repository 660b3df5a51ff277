//! Who may use the API: with `--api-token`, writes (`POST /events`) need
//! `Authorization: Bearer <token>`, and with `--api-token-reads` every read does too.
//!
//! `/healthz` and `/readyz` stay open, since probes carry no credentials, and so do the
//! dashboard's page and scripts, which hold no data: the page asks for the token and sends
//! it with each of its requests. A browser's `EventSource` cannot set headers, so a read
//! may carry the token as the `access_token` query parameter instead (RFC 6750, section
//! 2.3); the gate takes it off the URI before routing, and writes never accept it.
//!
//! Tokens are compared as SHA-256 digests in constant time, so that neither the time of a
//! refusal nor its length tells a caller how much of a guess was right.

use std::fmt;

use axum::http::{HeaderMap, Method, Uri, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The query parameter a read may carry its token in.
pub const TOKEN_PARAMETER: &str = "access_token";
/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LENGTH: usize = 16;

/// A bearer token; its `Debug` shows no secret.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(
        "the API token (--api-token or SLUICE_API_TOKEN) has {0} characters; use at least {MIN_TOKEN_LENGTH} (for example `openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error(
        "the API token (--api-token or SLUICE_API_TOKEN) may hold only visible ASCII characters, as an HTTP header carries it"
    )]
    NotVisibleAscii,
}

impl ApiToken {
    /// The token `text`, if it is long enough and fits in a header.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(TokenError::NotVisibleAscii);
        }
        if text.len() < MIN_TOKEN_LENGTH {
            return Err(TokenError::TooShort(text.len()));
        }
        Ok(ApiToken {
            digest: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// Whether `offered` is this token, in time that does not depend on how alike they are.
    pub fn matches(&self, offered: &str) -> bool {
        let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        self.digest.ct_eq(&offered).into()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiToken(hidden)")
    }
}

/// What needs the token.
#[derive(Debug, Clone, Default)]
pub struct ApiAccess {
    /// The token, if the API is protected at all.
    pub token: Option<ApiToken>,
    /// Whether reads need it too, not only writes.
    pub protect_reads: bool,
}

/// What a request may do, once its credentials are looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Admitted,
    /// No credentials where they are needed.
    Missing,
    /// Credentials that are not the token.
    Wrong,
}

impl ApiAccess {
    /// What is protected, for `/status`: `none`, `writes` or `all`.
    pub fn describe(&self) -> &'static str {
        match (&self.token, self.protect_reads) {
            (None, _) => "none",
            (Some(_), false) => "writes",
            (Some(_), true) => "all",
        }
    }

    /// Whether a request to `path` with `method` needs the token.
    fn needs_token(&self, method: &Method, path: &str) -> bool {
        if self.token.is_none() || is_open(path) {
            return false;
        }
        !is_read(method) || self.protect_reads
    }

    /// The verdict on a request; `query_token` is the `access_token` parameter, if any.
    pub fn judge(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Verdict {
        let Some(token) = &self.token else {
            return Verdict::Admitted;
        };
        if !self.needs_token(method, path) {
            return Verdict::Admitted;
        }
        let from_header = headers
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().ok().and_then(bearer));
        let offered = match (from_header, query_token) {
            (Some(Some(offered)), _) => offered,
            // A header that is not a bearer token is a wrong credential, not a missing one.
            (Some(None), _) => return Verdict::Wrong,
            (None, Some(offered)) if is_read(method) => offered,
            _ => return Verdict::Missing,
        };
        if token.matches(offered) {
            Verdict::Admitted
        } else {
            Verdict::Wrong
        }
    }
}

/// The token of an `Authorization: Bearer` value; the scheme is case-insensitive.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Routes that answer without a token: the probes, and the dashboard's page and scripts.
fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/") || path.starts_with("/assets/")
}

/// `uri` without its `access_token` parameter, and the parameter's value. The handlers
/// refuse parameters they do not know, so the token never reaches them.
pub fn take_query_token(uri: &Uri) -> Option<(Uri, String)> {
    let query = uri.query()?;
    let mut token = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((TOKEN_PARAMETER, _)) => {
                token = form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned());
                false
            }
            _ => *pair != TOKEN_PARAMETER,
        })
        .collect();
    let token = token?;
    let path_and_query = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    let uri = Uri::from_parts(parts).ok()?;
    Some((uri, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TOKEN: &str = "0123456789abcdef-secret";

    fn access(protect_reads: bool) -> ApiAccess {
        ApiAccess {
            token: Some(ApiToken::new(TOKEN).expect("token")),
            protect_reads,
        }
    }

    fn with_bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn short_or_invisible_tokens_are_refused() {
        assert_eq!(ApiToken::new("short").err(), Some(TokenError::TooShort(5)));
        assert_eq!(
            ApiToken::new("0123456789abcdef ghi").err(),
            Some(TokenError::NotVisibleAscii)
        );
        assert!(ApiToken::new(TOKEN).is_ok());
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let shown = format!("{:?}", access(true));
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    #[test]
    fn writes_need_the_token_and_reads_only_when_protected() {
        let none = HeaderMap::new();
        let good = with_bearer(&format!("Bearer {TOKEN}"));
        let post = Method::POST;
        let get = Method::GET;
        for reads in [false, true] {
            let access = access(reads);
            assert_eq!(
                access.judge(&post, "/events/orders", &none, None),
                Verdict::Missing
            );
            assert_eq!(
                access.judge(&post, "/events/orders", &good, None),
                Verdict::Admitted
            );
            let read = access.judge(&get, "/views/x", &none, None);
            assert_eq!(read == Verdict::Missing, reads);
            // Probes and the dashboard's files answer anyone.
            for open in ["/healthz", "/readyz", "/", "/assets/dashboard.js"] {
                assert_eq!(access.judge(&get, open, &none, None), Verdict::Admitted);
            }
        }
        assert_eq!(
            ApiAccess::default().judge(&post, "/events/orders", &none, None),
            Verdict::Admitted
        );
    }

    #[test]
    fn wrong_or_malformed_credentials_are_wrong() {
        let access = access(true);
        let get = Method::GET;
        for value in [
            "Bearer nope-nope-nope-nope",
            &format!("Basic {TOKEN}"),
            &format!("Bearer {TOKEN}x"),
            "Bearer",
        ] {
            assert_eq!(
                access.judge(&get, "/views", &with_bearer(value), None),
                Verdict::Wrong,
                "{value}"
            );
        }
        assert_eq!(
            access.judge(
                &get,
                "/views",
                &with_bearer(&format!("bearer  {TOKEN} ")),
                None
            ),
            Verdict::Admitted
        );
    }

    #[test]
    fn the_query_token_serves_reads_only() {
        let access = access(true);
        let none = HeaderMap::new();
        assert_eq!(
            access.judge(&Method::GET, "/stream", &none, Some(TOKEN)),
            Verdict::Admitted
        );
        assert_eq!(
            access.judge(&Method::GET, "/stream", &none, Some("wrong-wrong-wrong")),
            Verdict::Wrong
        );
        assert_eq!(
            access.judge(&Method::POST, "/events/orders", &none, Some(TOKEN)),
            Verdict::Missing
        );
    }

    #[test]
    fn the_query_token_is_taken_off_the_uri() {
        let uri: Uri = "/stream?views=a,b&access_token=abc%2Bd+e&x=1"
            .parse()
            .expect("uri");
        let (rest, token) = take_query_token(&uri).expect("token");
        assert_eq!(token, "abc+d e");
        assert_eq!(rest.to_string(), "/stream?views=a,b&x=1");
        let uri: Uri = "/views?access_token=t".parse().expect("uri");
        let (rest, token) = take_query_token(&uri).expect("token");
        assert_eq!((rest.to_string().as_str(), token.as_str()), ("/views", "t"));
        assert!(take_query_token(&"/views?views=a".parse().expect("uri")).is_none());
    }
}
