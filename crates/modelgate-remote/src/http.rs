//! The HTTP client: redirects, the hub token, retries and timeouts.
//!
//! Built on reqwest's blocking client, used from the scanning worker threads: a response body is
//! a plain `Read` that pulls one chunk at a time from the connection, so a download never runs
//! ahead of the scanner and memory stays at a few buffers per transfer. Redirects are followed
//! here rather than by reqwest, so that each hop is checked: at most [`MAX_REDIRECTS`], never from
//! HTTPS down to plain HTTP, and the `Authorization` header is attached only to requests for the
//! hub endpoint's own origin (a redirect to a CDN or anywhere else never carries the token).

use crate::{Error, display_url};
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT_ENCODING, AUTHORIZATION, HeaderValue, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::time::{Duration, SystemTime};

/// Redirect hops followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// What the client needs to know.
#[derive(Clone)]
pub struct Settings {
    /// The hub endpoint (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: Url,
    /// The hub token (`HF_TOKEN`), sent only to the endpoint's origin.
    pub token: Option<String>,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a response to start and between two reads of its body.
    pub read_timeout: Duration,
    /// Retries after a 429, a 5xx or a failed connection.
    pub retries: u32,
    /// The first backoff; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait accepted from `Retry-After` (longer requests give up).
    pub max_retry_wait: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl Settings {
    /// Defaults for `endpoint`: 10 s to connect, 60 s between reads, 4 retries from 1 s up,
    /// `Retry-After` honoured up to 120 s.
    pub fn new(endpoint: Url) -> Settings {
        Settings {
            endpoint,
            token: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_secs(1),
            max_retry_wait: Duration::from_secs(120),
        }
    }
}

/// The client. Cheap to share between threads.
pub struct Http {
    client: Client,
    settings: Settings,
    token: Option<HeaderValue>,
}

/// True for a URL whose host is a loopback address (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The whole body.
    Whole,
    /// Bytes `start..end` (end exclusive).
    Range(u64, u64),
}

impl Http {
    /// Builds the client. The endpoint must be `https://` (or `http://` on a loopback host).
    pub fn new(settings: Settings) -> Result<Http, Error> {
        let endpoint = &settings.endpoint;
        if !(endpoint.scheme() == "https" || (endpoint.scheme() == "http" && is_loopback(endpoint))) {
            return Err(Error::Usage(format!(
                "HF_ENDPOINT {}: must be an https:// URL (http:// only on a loopback host)",
                display_url(endpoint)
            )));
        }
        // reqwest is built without a default crypto provider; ring is ours. Installing it twice
        // (another thread, a second client) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.read_timeout)
            .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")))
            .referer(false)
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up the HTTP client: {e}")))?;
        let token = match &settings.token {
            Some(t) if !t.trim().is_empty() => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", t.trim())).map_err(|_| {
                    Error::Usage("HF_TOKEN contains characters not allowed in a header".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            _ => None,
        };
        Ok(Http { client, settings, token })
    }

    /// Builds a client that sends `authorization`, a whole `Authorization` header value (`Basic …`
    /// or `Bearer …`, for an OCI registry), instead of the hub token: like the token, only to
    /// requests for the endpoint's own origin, never across a redirect to another host.
    pub fn with_authorization(settings: Settings, authorization: Option<&str>) -> Result<Http, Error> {
        let mut http = Http::new(Settings { token: None, ..settings })?;
        if let Some(a) = authorization {
            let mut v = HeaderValue::from_str(a).map_err(|_| {
                Error::Usage("a credential contains characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            http.token = Some(v);
        }
        Ok(http)
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// True if a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// True if `url` is on the hub endpoint's origin (scheme, host and port), the only place the
    /// token is sent.
    pub fn is_hub_origin(&self, url: &Url) -> bool {
        url.origin() == self.settings.endpoint.origin()
    }

    /// GET with redirects and retries. Returns the final response whatever its status (after
    /// retries are exhausted for 429/5xx); the caller decides what a status means.
    pub fn get(&self, url: &Url, want: Want) -> Result<Response, Error> {
        let mut attempt = 0u32;
        loop {
            let outcome = self.get_once(url, want);
            let retryable = match &outcome {
                Ok(r) => r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error(),
                Err(Hop::Transient(_)) => true,
                Err(Hop::Fatal(_)) => false,
            };
            if !retryable || attempt >= self.settings.retries {
                return outcome.map_err(|h| match h {
                    Hop::Transient(e) | Hop::Fatal(e) => e,
                });
            }
            let wait = match &outcome {
                Ok(r) => retry_after(r).unwrap_or_else(|| self.backoff(attempt)),
                Err(_) => self.backoff(attempt),
            };
            if wait > self.settings.max_retry_wait {
                let status = outcome.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                return Err(Error::Status {
                    url: display_url(url),
                    status,
                    hint: format!(
                        " (the server asks to retry after {} s, more than the {} s modelgate waits)",
                        wait.as_secs(),
                        self.settings.max_retry_wait.as_secs()
                    ),
                });
            }
            drop(outcome);
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.settings.backoff.saturating_mul(1u32 << attempt.min(16))
    }

    /// One request, following redirects.
    fn get_once(&self, start: &Url, want: Want) -> Result<Response, Hop> {
        let mut url = start.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.client.get(url.clone()).header(ACCEPT_ENCODING, "identity");
            if let Want::Range(a, b) = want {
                req = req.header(RANGE, format!("bytes={a}-{}", b.saturating_sub(1)));
            }
            if let Some(token) = &self.token
                && self.is_hub_origin(&url)
            {
                req = req.header(AUTHORIZATION, token.clone());
            }
            let resp = req.send().map_err(|e| {
                let err = Error::Transfer { url: display_url(&url), why: describe(&e) };
                if e.is_connect() || e.is_timeout() { Hop::Transient(err) } else { Hop::Fatal(err) }
            })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| {
                    Hop::Fatal(Error::Transfer {
                        url: display_url(&url),
                        why: format!("HTTP {} redirect without a usable Location", resp.status().as_u16()),
                    })
                })?;
            let allowed = match next.scheme() {
                "https" => true,
                "http" => is_loopback(&next),
                _ => false,
            };
            if !allowed {
                return Err(Hop::Fatal(Error::Transfer {
                    url: display_url(&url),
                    why: format!(
                        "refusing a redirect to {} (only https, never a downgrade)",
                        display_url(&next)
                    ),
                }));
            }
            url = next;
        }
        Err(Hop::Fatal(Error::Transfer {
            url: display_url(start),
            why: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}

enum Hop {
    Transient(Error),
    Fatal(Error),
}

/// A transfer error in one line, without the URL (the caller adds a redacted one).
pub fn describe(e: &reqwest::Error) -> String {
    let mut why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "transfer failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    why
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date.
fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(v)?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form senders may use.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else {
        return None;
    };
    if !(1970..=9999).contains(&year) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since the epoch (civil-from-days inverse, Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        assert!(parse_http_date("garbage").is_none());
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:9/x", true),
            ("http://localhost/x", true),
            ("http://[::1]/x", true),
            ("http://10.0.0.1/x", false),
            ("https://huggingface.co/x", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn settings_never_print_the_token() {
        let mut s = Settings::new(Url::parse("https://huggingface.co").unwrap());
        s.token = Some("hf_secret".into());
        assert!(!format!("{s:?}").contains("hf_secret"));
    }
}
