//! The HTTP client: redirects, the hub token, retries and timeouts.
//!
//! Built on reqwest's blocking client, used from the scanning worker threads: a response body is
//! a plain `Read` that pulls one chunk at a time from the connection, so a download never runs
//! ahead of the scanner and memory stays at a few buffers per transfer. Redirects are followed
//! here rather than by reqwest, so that each hop is checked ([`check_redirect`]): at most
//! [`MAX_REDIRECTS`], never from HTTPS down to plain HTTP (not even to loopback), never into a
//! loopback, link-local or private address unless the request started there, and the
//! `Authorization` header is attached only to requests for the hub endpoint's own origin (a
//! redirect to a CDN or anywhere else never carries the token).
//!
//! Besides the connect and read timeouts, one file's transfer (its body, range requests, retries
//! and their waits) has an overall [`Deadline`] (`Settings::download_timeout`): a server that
//! trickles a byte now and then, never tripping the read timeout, cannot hold the gate forever.

use crate::{Error, display_url};
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT_ENCODING, AUTHORIZATION, HeaderValue, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

/// Redirect hops followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// Time allowed for one file's whole transfer by default: one hour (a 10 GiB file at 3 MB/s).
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

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
    /// Time allowed for one file's whole transfer ([`Deadline`]).
    pub download_timeout: Duration,
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
            .field("download_timeout", &self.download_timeout)
            .finish()
    }
}

impl Settings {
    /// Defaults for `endpoint`: 10 s to connect, 60 s between reads, 4 retries from 1 s up,
    /// `Retry-After` honoured up to 120 s, [`DEFAULT_DOWNLOAD_TIMEOUT`] per file.
    pub fn new(endpoint: Url) -> Settings {
        Settings {
            endpoint,
            token: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_secs(1),
            max_retry_wait: Duration::from_secs(120),
            download_timeout: DEFAULT_DOWNLOAD_TIMEOUT,
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

/// Where a URL's host is, as far as can be told without resolving names: an address written
/// in the URL is classified by its range; `localhost` (and `*.localhost`) is loopback; any other
/// name counts as public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Anywhere else.
    Public,
    /// This machine: 127.0.0.0/8, `::1`, the unspecified addresses (0.0.0.0/8, `::`, which
    /// connect to this machine), `localhost`.
    Loopback,
    /// Link-local: 169.254.0.0/16 (where cloud metadata services answer), fe80::/10.
    LinkLocal,
    /// Private and other non-public ranges: 10/8, 172.16/12, 192.168/16, 100.64/10 (shared
    /// address space), multicast, broadcast and reserved (240/4), fc00::/7 (unique local),
    /// ff00::/8.
    Private,
}

impl Reach {
    fn describe(self) -> &'static str {
        match self {
            Reach::Public => "a public address",
            Reach::Loopback => "a loopback address",
            Reach::LinkLocal => "a link-local address",
            Reach::Private => "a private address",
        }
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() || a == 0 {
        Reach::Loopback
    } else if ip.is_link_local() {
        Reach::LinkLocal
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) || ip.is_multicast() || a >= 240 {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    let seg = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
    // addresses reach the IPv4 address they carry.
    let compatible = seg[5] == 0 && (seg[6] != 0 || seg[7] > 1); // not `::` or `::1`
    let embedded =
        seg[..5] == [0; 5] && (seg[5] == 0xffff || compatible) || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if embedded {
        let o = ip.octets();
        return reach_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if ip.is_loopback() || ip.is_unspecified() {
        Reach::Loopback
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Reach::LinkLocal
    } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xff00 == 0xff00 {
        Reach::Private
    } else {
        Reach::Public
    }
}

/// Where `url`'s host is ([`Reach`]).
pub fn reach(url: &Url) -> Reach {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") { Reach::Loopback } else { Reach::Public }
        }
        Some(url::Host::Ipv4(ip)) => reach_v4(ip),
        Some(url::Host::Ipv6(ip)) => reach_v6(ip),
        None => Reach::Private,
    }
}

/// Whether a redirect to `next` may be followed, for a request that started at `start` and has
/// been over HTTPS at some hop (`was_https`). The rules:
///
/// - only `https://`, or `http://` to a loopback host;
/// - once HTTPS, never plain HTTP again, not even to loopback (a downgrade exposes the rest of the
///   transfer, and the signed URL, to anyone on the path);
/// - never into a loopback, link-local or private address unless the request started in the
///   same kind of range (a mirror on this machine or in this network may redirect within it; a
///   public hub may not point the gate at the CI machine, its metadata service or the office
///   network).
///
/// Host names are not resolved here: the check applies to addresses written in the `Location`.
pub fn check_redirect(start: &Url, was_https: bool, next: &Url) -> Result<(), String> {
    let shown = display_url(next);
    if was_https && next.scheme() == "http" {
        return Err(format!("refusing a redirect to {shown}: a downgrade from https to plain http"));
    }
    let to = reach(next);
    let from = reach(start);
    if to != Reach::Public && to != from {
        return Err(format!(
            "refusing a redirect to {shown}: it leads to {} and the source ({}) is not in such a range",
            to.describe(),
            display_url(start)
        ));
    }
    match next.scheme() {
        "https" => {}
        "http" if is_loopback(next) => {}
        _ => {
            return Err(format!(
                "refusing a redirect to {shown} (only https, or http on a loopback host; never a downgrade)"
            ));
        }
    }
    Ok(())
}

/// An overall deadline for one file's transfer: the body, its range requests, retries and their
/// waits. A body read through [`Timed`] fails at the first read after it passes.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        let now = Instant::now();
        Deadline { at: now.checked_add(limit).unwrap_or(now + Duration::from_secs(86_400 * 365)), limit }
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// True once passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// What to say when it passed.
    pub fn message(&self) -> String {
        format!("the transfer did not finish within its download deadline of {} s", self.limit.as_secs())
    }
}

/// A body that fails once its [`Deadline`] has passed.
pub struct Timed<R> {
    inner: R,
    deadline: Deadline,
}

impl<R> Timed<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, deadline: Deadline) -> Timed<R> {
        Timed { inner, deadline }
    }
}

impl<R: Read> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.passed() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, self.deadline.message()));
        }
        self.inner.read(buf)
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
        self.get_within(url, want, None)
    }

    /// [`Http::get`] within a deadline: no request, redirect hop or retry wait past it. Read the
    /// body through [`Timed`] so that it stops there too (at most one read timeout later).
    pub fn get_within(&self, url: &Url, want: Want, deadline: Option<&Deadline>) -> Result<Response, Error> {
        let late = |d: &Deadline| Error::Transfer { url: display_url(url), why: d.message() };
        let mut attempt = 0u32;
        loop {
            if let Some(d) = deadline
                && d.passed()
            {
                return Err(late(d));
            }
            let outcome = self.get_once(url, want, deadline);
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
            if let Some(d) = deadline
                && wait >= d.remaining()
            {
                return Err(late(d));
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
    fn get_once(&self, start: &Url, want: Want, deadline: Option<&Deadline>) -> Result<Response, Hop> {
        let mut url = start.clone();
        let mut was_https = false;
        for _ in 0..=MAX_REDIRECTS {
            was_https |= url.scheme() == "https";
            let mut req = self.client.get(url.clone()).header(ACCEPT_ENCODING, "identity");
            // No per-request timeout from the deadline: reqwest would apply it to the whole
            // body as well, replacing the read timeout. Each wait stays bounded by the read
            // timeout, and the deadline is checked before each hop and each body read.
            if let Some(d) = deadline
                && d.passed()
            {
                return Err(Hop::Fatal(Error::Transfer { url: display_url(&url), why: d.message() }));
            }
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
            if let Err(why) = check_redirect(start, was_https, &next) {
                return Err(Hop::Fatal(Error::Transfer { url: display_url(&url), why }));
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
    fn address_ranges() {
        for (u, want) in [
            ("https://huggingface.co/x", Reach::Public),
            ("https://8.8.8.8/x", Reach::Public),
            ("https://[2001:db8::1]/x", Reach::Public),
            ("http://127.0.0.1/x", Reach::Loopback),
            ("http://127.9.9.9/x", Reach::Loopback),
            ("http://2130706433/x", Reach::Loopback), // 127.0.0.1 written as a number
            ("http://0x7f.1/x", Reach::Loopback),
            ("http://0.0.0.0/x", Reach::Loopback),
            ("http://[::]/x", Reach::Loopback),
            ("http://[::1]/x", Reach::Loopback),
            ("http://[::ffff:127.0.0.1]/x", Reach::Loopback),
            ("http://LocalHost./x", Reach::Loopback),
            ("http://app.localhost/x", Reach::Loopback),
            ("https://169.254.169.254/latest/meta-data", Reach::LinkLocal),
            ("https://[fe80::1]/x", Reach::LinkLocal),
            ("https://[::ffff:169.254.169.254]/x", Reach::LinkLocal),
            ("https://10.0.0.1/x", Reach::Private),
            ("https://172.16.0.1/x", Reach::Private),
            ("https://172.31.255.255/x", Reach::Private),
            ("https://192.168.1.1/x", Reach::Private),
            ("https://100.64.0.1/x", Reach::Private),
            ("https://[fd00::1]/x", Reach::Private),
            ("https://[64:ff9b::10.0.0.1]/x", Reach::Private),
            ("https://[::ffff:10.0.0.1]/x", Reach::Private),
            ("https://224.0.0.1/x", Reach::Private),
            ("https://255.255.255.255/x", Reach::Private),
            ("https://172.32.0.1/x", Reach::Public),
            ("https://100.128.0.1/x", Reach::Public),
        ] {
            assert_eq!(reach(&Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn redirect_policy() {
        let u = |s: &str| Url::parse(s).unwrap();
        let hub = u("https://huggingface.co/org/m/resolve/c/model.bin");
        let local = u("http://127.0.0.1:8080/org/m/resolve/c/model.bin");
        let mirror = u("https://10.1.2.3/org/m/resolve/c/model.bin");
        let ok = |start: &Url, https: bool, next: &str| check_redirect(start, https, &u(next));
        // A public hub to its CDN: fine.
        assert!(ok(&hub, true, "https://cdn-lfs.hf.co/x?sig=1").is_ok());
        // Never down to http, not even to loopback.
        for next in ["http://cdn.example/x", "http://127.0.0.1:9/x", "http://localhost/x"] {
            let why = ok(&hub, true, next).unwrap_err();
            assert!(why.contains("downgrade"), "{next}: {why}");
        }
        // A loopback start that went through https may not come back to http either.
        assert!(ok(&local, true, "http://127.0.0.1:9/x").unwrap_err().contains("downgrade"));
        // Other schemes, and http to a non-loopback host.
        assert!(ok(&hub, true, "ftp://example.com/x").is_err());
        assert!(ok(&local, false, "http://example.com/x").is_err());
        assert!(ok(&local, false, "file:///etc/passwd").is_err());
        // A public source may not point into this machine, its link-local metadata service or
        // private networks.
        for next in [
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://[::1]/x",
            "https://2130706433/x",
            "https://0.0.0.0/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fe80::1]/x",
            "https://10.0.0.8/x",
            "https://192.168.0.1/x",
            "https://[fd12::1]/x",
            "https://[::ffff:10.0.0.8]/x",
        ] {
            let why = ok(&hub, true, next).unwrap_err();
            assert!(why.contains("leads to a"), "{next}: {why}");
        }
        // ... unless the source itself is in such a range: a loopback test server redirecting
        // within loopback, a private mirror within its network.
        assert!(ok(&local, false, "http://127.0.0.2:9/x").is_ok());
        assert!(ok(&local, false, "https://localhost/x").is_ok());
        assert!(ok(&local, false, "https://huggingface.co/x").is_ok());
        assert!(ok(&mirror, true, "https://10.9.9.9/x").is_ok());
        assert!(ok(&local, false, "https://10.0.0.8/x").unwrap_err().contains("private"));
        assert!(ok(&local, false, "https://169.254.169.254/x").unwrap_err().contains("link-local"));
        assert!(ok(&mirror, true, "https://127.0.0.1/x").unwrap_err().contains("loopback"));
    }

    #[test]
    fn deadlines_stop_reads() {
        let d = Deadline::after(Duration::ZERO);
        assert!(d.passed() && d.remaining().is_zero());
        let mut r = Timed::new(&b"data"[..], d);
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("download deadline"), "{e}");
        let mut r = Timed::new(&b"data"[..], Deadline::after(Duration::from_secs(60)));
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 4);
        assert!(!Deadline::after(Duration::MAX).passed());
    }

    #[test]
    fn settings_never_print_the_token() {
        let mut s = Settings::new(Url::parse("https://huggingface.co").unwrap());
        s.token = Some("hf_secret".into());
        assert!(!format!("{s:?}").contains("hf_secret"));
    }
}
