//! A fake Hugging Face Hub on loopback, for tests: a hand-written HTTP/1.1 responder (one thread
//! per connection, `Connection: close`) serving the model-info API and file downloads, with
//! switches for every misbehaviour the client must survive. Nothing here reaches the network.
//! Shared by the remote crate's tests and the command's tests (`#[path]`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub server: &'static str,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How a file misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Answer 429 (`Retry-After: 0`) this many times first.
    pub rate_limit_first: u32,
    /// Answer 503 this many times first.
    pub unavailable_first: u32,
    /// Send the headers and this many bytes, then stall.
    pub stall_after: Option<usize>,
    /// Announce the full Content-Length but send only this many bytes, then close.
    pub truncate_at: Option<usize>,
    /// Redirect to the CDN server (another host).
    pub via_cdn: bool,
    /// Serve different bytes (these) to range requests.
    pub range_lie: Option<Vec<u8>>,
    /// Do not advertise or answer range requests.
    pub no_ranges: bool,
    /// List this SHA-256 instead of the real one.
    pub listed_sha256: Option<String>,
    /// List this size instead of the real one.
    pub listed_size: Option<u64>,
    /// Keep the file in git (listed with a blob id) rather than LFS.
    pub in_git: bool,
    /// Answer with a redirect to this URL.
    pub redirect_to: Option<String>,
    /// Send the body one byte at a time, this long apart.
    pub trickle: Option<Duration>,
    /// With `in_git`: list this `blobId` instead of the real (SHA-1) one.
    pub blob_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct File {
    pub data: Vec<u8>,
    pub quirks: Quirks,
}

#[derive(Debug, Clone, Default)]
pub struct Repo {
    pub commit: String,
    /// Branch and tag names that resolve to `commit`.
    pub refs: Vec<String>,
    pub files: BTreeMap<String, File>,
    /// Gated: files need `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// An extra raw `siblings` entry (hostile listings).
    pub extra_sibling: Option<String>,
}

impl Repo {
    pub fn new(commit: &str) -> Repo {
        Repo { commit: commit.into(), refs: vec!["main".into()], ..Repo::default() }
    }
    pub fn file(mut self, path: &str, data: &[u8]) -> Repo {
        self.files.insert(path.into(), File { data: data.to_vec(), quirks: Quirks::default() });
        self
    }
    pub fn quirky(mut self, path: &str, data: &[u8], quirks: Quirks) -> Repo {
        self.files.insert(path.into(), File { data: data.to_vec(), quirks });
        self
    }
}

#[derive(Default)]
struct State {
    /// Snapshots of each repository, oldest first: every commit stays downloadable, branch and
    /// tag names resolve in the newest.
    repos: BTreeMap<String, Vec<Repo>>,
    /// Plain files served at a path (for https:// URL sources).
    plain: BTreeMap<String, File>,
    hits: BTreeMap<String, u32>,
}

/// The fake hub and its CDN (a second server on another loopback address).
pub struct FakeHub {
    pub endpoint: String,
    pub cdn: String,
    state: Arc<Mutex<State>>,
    pub log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    pub connections: Arc<AtomicU32>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The git blob id in git's SHA-256 object format.
pub fn git_blob_sha256(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn git_blob(data: &[u8]) -> String {
    use sha1::{Digest as _, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let state = Arc::new(Mutex::new(State::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU32::new(0));
        let hub = TcpListener::bind("127.0.0.1:0").unwrap();
        // Another host: 127.0.0.2 is loopback too (the whole of 127/8 is); fall back to another port.
        let cdn = TcpListener::bind("127.0.0.2:0").or_else(|_| TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoint = format!("http://{}", hub.local_addr().unwrap());
        let cdn_url = format!("http://{}", cdn.local_addr().unwrap());
        for (listener, name) in [(hub, "hub"), (cdn, "cdn")] {
            let (state, log, stop, cdn_url, conns) =
                (state.clone(), log.clone(), stop.clone(), cdn_url.clone(), connections.clone());
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                // Bounded: the server stops with the test (and after ten minutes regardless).
                let deadline = std::time::Instant::now() + Duration::from_secs(600);
                while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            conns.fetch_add(1, Ordering::SeqCst);
                            let (state, log, cdn_url) = (state.clone(), log.clone(), cdn_url.clone());
                            std::thread::spawn(move || {
                                let _ = serve(conn, name, &state, &log, &cdn_url);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FakeHub { endpoint, cdn: cdn_url, state, log, stop, connections }
    }

    /// Adds a repository, or a new commit of it (its refs now point there).
    pub fn add(&self, name: &str, repo: Repo) {
        self.state.lock().unwrap().repos.entry(name.into()).or_default().push(repo);
    }

    /// Serves `data` at `path` on the hub server (for URL sources).
    pub fn plain(&self, path: &str, data: &[u8], quirks: Quirks) {
        self.state.lock().unwrap().plain.insert(path.into(), File { data: data.to_vec(), quirks });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    conn: TcpStream,
    server: &'static str,
    state: &Mutex<State>,
    log: &Mutex<Vec<Seen>>,
    cdn: &str,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let seen = Seen { server, method, target: target.clone(), headers };
    log.lock().unwrap().push(seen.clone());
    let mut out = conn;
    let reply = route(&seen, state, cdn);
    reply.send(&mut out, &seen)
}

enum Reply {
    Status(u16, Vec<(String, String)>, Vec<u8>),
    File(File, bool),
}

fn json(status: u16, body: String) -> Reply {
    Reply::Status(status, vec![("Content-Type".into(), "application/json".into())], body.into_bytes())
}

fn route(seen: &Seen, state: &Mutex<State>, cdn: &str) -> Reply {
    let mut st = state.lock().unwrap();
    let (path, _query) = seen.target.split_once('?').unwrap_or((&seen.target, ""));
    let path = percent_decode(path);
    let count = {
        let key = format!("{} {}", seen.server, path);
        let n = st.hits.entry(key).or_default();
        *n += 1;
        *n
    };
    if let Some(f) = st.plain.get(&path) {
        if let Some(to) = &f.quirks.redirect_to {
            return Reply::Status(302, vec![("Location".into(), to.clone())], Vec::new());
        }
        return Reply::File(f.clone(), seen.header("Range").is_none());
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        // org/name/revision/<rev>
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [org, name, "revision", rev] = parts[..] else {
            return json(404, "{\"error\":\"not found\"}".into());
        };
        let Some(snapshots) = st.repos.get(&format!("{org}/{name}")) else {
            return json(401, "{\"error\":\"Repository not found\"}".into());
        };
        let by_commit = snapshots.iter().find(|r| r.commit == rev);
        let by_ref = snapshots.last().filter(|r| r.refs.iter().any(|x| x == rev));
        let Some(repo) = by_commit.or(by_ref) else {
            return json(404, "{\"error\":\"Revision not found\"}".into());
        };
        let mut siblings: Vec<String> = repo
            .files
            .iter()
            .map(|(p, f)| {
                let size = f.quirks.listed_size.unwrap_or(f.data.len() as u64);
                if f.quirks.in_git {
                    format!(
                        "{{\"rfilename\":{:?},\"size\":{size},\"blobId\":\"{}\"}}",
                        p,
                        f.quirks.blob_id.clone().unwrap_or_else(|| git_blob(&f.data))
                    )
                } else {
                    let sha = f.quirks.listed_sha256.clone().unwrap_or_else(|| sha256_hex(&f.data));
                    format!(
                        "{{\"rfilename\":{:?},\"size\":{size},\"blobId\":\"{}\",\"lfs\":{{\"sha256\":\"{sha}\",\"size\":{size},\"pointerSize\":134}}}}",
                        p,
                        "b".repeat(40)
                    )
                }
            })
            .collect();
        if let Some(extra) = &repo.extra_sibling {
            siblings.push(extra.clone());
        }
        let gated = if repo.token.is_some() { "\"auto\"" } else { "false" };
        return json(
            200,
            format!(
                "{{\"_id\":\"x\",\"id\":\"{org}/{name}\",\"sha\":\"{}\",\"gated\":{gated},\"private\":false,\"siblings\":[{}]}}",
                repo.commit,
                siblings.join(",")
            ),
        );
    }
    // /org/name/resolve/<commit>/<path>  (on the hub or, after a redirect, on the CDN)
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [org, name, "resolve", commit, file] = parts[..] else {
        return json(404, "{\"error\":\"not found\"}".into());
    };
    let Some(snapshots) = st.repos.get(&format!("{org}/{name}")) else {
        return json(404, "{\"error\":\"Repository not found\"}".into());
    };
    let Some(repo) = snapshots.iter().find(|r| r.commit == commit).cloned() else {
        return json(404, "{\"error\":\"Revision not found\"}".into());
    };
    let Some(f) = repo.files.get(file).cloned() else {
        return json(404, "{\"error\":\"Entry not found\"}".into());
    };
    if seen.server == "hub" {
        if let Some(token) = &repo.token
            && seen.header("Authorization") != Some(&format!("Bearer {token}"))
        {
            return json(401, "{\"error\":\"Access to this model is restricted\"}".into());
        }
        if count <= f.quirks.rate_limit_first {
            return Reply::Status(429, vec![("Retry-After".into(), "0".into())], b"slow down".to_vec());
        }
        if count <= f.quirks.unavailable_first {
            return Reply::Status(503, Vec::new(), b"unavailable".to_vec());
        }
        if f.quirks.via_cdn {
            return Reply::Status(
                302,
                vec![("Location".into(), format!("{cdn}/{org}/{name}/resolve/{commit}/{file}?sig=abc"))],
                Vec::new(),
            );
        }
    }
    let whole = seen.header("Range").is_none();
    Reply::File(f, whole)
}

impl Reply {
    fn send(self, out: &mut TcpStream, seen: &Seen) -> std::io::Result<()> {
        match self {
            Reply::Status(code, headers, body) => {
                let mut head =
                    format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.write_all(&body)?;
            }
            Reply::File(f, whole) => {
                let q = &f.quirks;
                let ranges = if q.no_ranges { "" } else { "Accept-Ranges: bytes\r\n" };
                if !whole && !q.no_ranges {
                    let r = seen.header("Range").unwrap_or("");
                    let (a, b) = r
                        .strip_prefix("bytes=")
                        .and_then(|r| r.split_once('-'))
                        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
                        .unwrap_or((0, 0));
                    let source = q.range_lie.as_ref().unwrap_or(&f.data);
                    let b = b.min(source.len().saturating_sub(1));
                    let body = source.get(a..=b).unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{}\r\n{ranges}Connection: close\r\n\r\n",
                        body.len(),
                        f.data.len()
                    );
                    out.write_all(head.as_bytes())?;
                    out.write_all(body)?;
                    return Ok(());
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{ranges}Connection: close\r\n\r\n",
                    f.data.len()
                );
                out.write_all(head.as_bytes())?;
                if let Some(n) = q.stall_after {
                    out.write_all(&f.data[..n.min(f.data.len())])?;
                    out.flush()?;
                    std::thread::sleep(Duration::from_secs(20));
                    return Ok(());
                }
                if let Some(gap) = q.trickle {
                    for b in &f.data {
                        out.write_all(std::slice::from_ref(b))?;
                        out.flush()?;
                        std::thread::sleep(gap);
                    }
                    return Ok(());
                }
                if let Some(n) = q.truncate_at {
                    out.write_all(&f.data[..n.min(f.data.len())])?;
                    out.flush()?;
                    let _ = out.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
                out.write_all(&f.data)?;
            }
        }
        out.flush()?;
        // Let the client read everything before the socket goes away.
        let _ = out.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 64];
        let _ = out.read(&mut sink);
        Ok(())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A protocol-2 pickle that calls `posix.system("id")` when loaded.
pub const EVIL_PICKLE: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";

/// A file of the repository's examples (real torch output).
pub fn example(path: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read(root.join(path)).unwrap()
}
