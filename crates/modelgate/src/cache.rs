//! `--cache DIR`: a content-addressed cache of inventories (`docs/scale.md`).
//!
//! An entry is what the parsers saw in one file's bytes, the inventory — not the findings: the
//! policy is applied to it afresh on every run, so a changed policy or new suppressions never
//! need a re-parse, and a cached entry can never carry yesterday's verdict. The key is
//! everything the inventory depends on:
//!
//! - the SHA-256 and size of the bytes;
//! - the modelgate version and the SHA-256 of the running executable (parsers and the rule data
//!   are compiled in, so any other build, even of the same version, has other keys);
//! - the scan options (resource limits);
//! - where the bytes came from: for a local file its name (Python sources are recognised by
//!   name), for a download nothing else (the scanner sees only the bytes).
//!
//! Local files are always read and hashed (modification times are not trusted); a hit saves
//! the parse. Two kinds of local file are never cached, because their inventory depends on
//! their neighbours and not only on their bytes: JSON files (a shard index's paths are checked
//! for symbolic links that leave the model) and ONNX models (external data through symbolic
//! links). A remote file whose SHA-256 the source listed up front (a Git LFS object) is looked
//! up before it is downloaded; on a hit nothing is fetched and the report says so.
//!
//! Entries are written to a temporary file and renamed into place, so any number of shards can
//! share one directory; a damaged entry (unparseable, another key, a checksum that does not
//! match) is ignored and rewritten, never trusted. The directory is kept under a size limit by
//! evicting the least recently used entries at the end of a run.
//!
//! Shards on different machines share the cache in an object store instead: `--cache
//! s3://bucket/prefix` (or `gs://`, `az://`), the same keys and entries as objects
//! `prefix/modelgate-cache-v1/<2 hex>/<62 hex>.json`, through the client modelgate-remote
//! configures for object-store sources. An object store's put is atomic; a new entry is written
//! with a conditional put (`PutMode::Create`: S3 `If-None-Match: *`, GCS generation 0, Azure
//! `If-None-Match: *`), so the first writer of a key wins and later ones leave it alone (where
//! the store cannot, the last writer wins: entries for one key are identical anyway). A damaged
//! entry is replaced only if it is still the object that was read (`PutMode::Update` on its
//! ETag). Eviction is left to the bucket's lifecycle rules (`docs/scale.md`).

use crate::error::GateError;
use crate::walk::Target;
use modelgate_formats::{Format, Node};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Bumped on any change to the entry format or the key.
pub const CACHE_FORMAT: u32 = 1;

/// Default size limit.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Where entries are kept: a directory ([`DirBackend`]) or an object store ([`StoreBackend`]).
pub trait Backend: Send + Sync {
    /// The entry for a key, if there is one (damage is the caller's to detect).
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores an entry atomically: readers see the old entry, the new one, or none. Called only
    /// after a miss: an entry that [`Backend::get`] returned for this key was found unsound.
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
    /// Marks an entry as used (for eviction).
    fn touch(&self, key: &str);
    /// Evicts least recently used entries until at most `max_bytes` remain; returns how many
    /// bytes remain, or `None` when eviction is left to the store.
    fn evict(&self, max_bytes: u64) -> std::io::Result<Option<u64>>;
    /// Where the entries are, for messages.
    fn describe(&self) -> String;
}

/// The embedded backend: `DIR/modelgate-cache-v1/<2 hex>/<62 hex>.json`.
pub struct DirBackend {
    root: PathBuf,
}

impl DirBackend {
    pub fn new(dir: &Path) -> std::io::Result<DirBackend> {
        let root = dir.join(format!("modelgate-cache-v{CACHE_FORMAT}"));
        std::fs::create_dir_all(&root)?;
        Ok(DirBackend { root })
    }

    fn path(&self, key: &str) -> PathBuf {
        let (a, b) = key.split_at(2.min(key.len()));
        self.root.join(a).join(format!("{b}.json"))
    }
}

impl Backend for DirBackend {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        // Held to the same size as an object-store entry: a damaged or planted file in the cache
        // directory is not read into memory whole.
        let file = std::fs::File::open(self.path(key)).ok()?;
        if file.metadata().ok()?.len() > MAX_STORED_ENTRY {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_STORED_ENTRY + 1).read_to_end(&mut bytes).ok()?;
        (bytes.len() as u64 <= MAX_STORED_ENTRY).then_some(bytes)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        temp.write_all(bytes)?;
        temp.flush()?;
        // A rename within one directory is atomic; a concurrent writer of the same key writes
        // the same content, so whichever rename comes last is as good as the first.
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    fn touch(&self, key: &str) {
        if let Ok(f) = std::fs::File::options().append(true).open(self.path(key)) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    fn evict(&self, max_bytes: u64) -> std::io::Result<Option<u64>> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        let stale = SystemTime::now() - Duration::from_secs(3600);
        for dir in std::fs::read_dir(&self.root)?.flatten() {
            let Ok(files) = std::fs::read_dir(dir.path()) else { continue };
            for f in files.flatten() {
                let Ok(meta) = f.metadata() else { continue };
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if f.file_name().to_string_lossy().starts_with(".tmp-") {
                    // Left behind by a writer that was killed; a live one finishes in seconds.
                    if mtime < stale {
                        let _ = std::fs::remove_file(f.path());
                    }
                    continue;
                }
                total += meta.len();
                entries.push((mtime, meta.len(), f.path()));
            }
        }
        if total <= max_bytes {
            return Ok(Some(total));
        }
        // Down to 90% of the limit, so that the next run does not evict again at once.
        let target = max_bytes / 10 * 9;
        entries.sort();
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                // Another shard evicted it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(e),
            }
        }
        Ok(Some(total))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Largest entry read from an object store (an inventory is kilobytes; anything far larger is
/// damage, and is not downloaded).
const MAX_STORED_ENTRY: u64 = 64 << 20;

/// A cache shared through an object store: `s3://bucket/prefix`, `gs://…`, `az://…`.
pub struct StoreBackend {
    shown: String,
    root: String,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    runtime: tokio::runtime::Runtime,
    /// The version of every entry read, so that a damaged one is replaced only if it is still
    /// the one read.
    seen: std::sync::Mutex<std::collections::HashMap<String, object_store::UpdateVersion>>,
    /// Set after the store failed: the rest of the run goes without the cache (one warning).
    broken: std::sync::atomic::AtomicBool,
}

impl StoreBackend {
    pub fn new(location: &modelgate_remote::objstore::Location) -> Result<StoreBackend, GateError> {
        let usage = |why: String| GateError::Usage(format!("--cache {}: {why}", location.key()));
        // Short deadlines: a slow cache must not hold the scan up for long (a miss only costs a
        // parse or a download).
        let mut settings = modelgate_remote::http::Settings::new(
            modelgate_remote::Url::parse("https://cache.invalid/").map_err(|e| usage(e.to_string()))?,
        );
        settings.connect_timeout = Duration::from_secs(5);
        settings.read_timeout = Duration::from_secs(30);
        settings.retries = 2;
        let store =
            modelgate_remote::objstore::open(location, &settings).map_err(|e| usage(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| usage(format!("cannot start the object-store runtime: {e}")))?;
        let root = match location.prefix.as_str() {
            "" => format!("modelgate-cache-v{CACHE_FORMAT}"),
            p => format!("{p}/modelgate-cache-v{CACHE_FORMAT}"),
        };
        Ok(StoreBackend {
            shown: location.key(),
            root,
            store,
            runtime,
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
            broken: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn path(&self, key: &str) -> object_store::path::Path {
        let (a, b) = key.split_at(2.min(key.len()));
        object_store::path::Path::from(format!("{}/{a}/{b}.json", self.root))
    }

    /// The first failure is reported and switches the cache off for the rest of the run.
    fn failed(&self, what: &str, e: &object_store::Error) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let more = s.to_string();
                if !why.contains(&more) {
                    why = format!("{why}: {more}");
                }
                source = s.source();
            }
            let why: String = why.chars().map(|c| if c.is_control() { ' ' } else { c }).take(600).collect();
            eprintln!(
                "modelgate: warning: cache {}: {what}: {why}; continuing without the cache",
                self.shown
            );
        }
    }

    fn seen(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, object_store::UpdateVersion>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for StoreBackend {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStoreExt;
        if self.broken.load(Ordering::Relaxed) {
            return None;
        }
        let path = self.path(key);
        let result = self.runtime.block_on(async {
            let got = self.store.get(&path).await?;
            let version = object_store::UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            if got.meta.size > MAX_STORED_ENTRY {
                return Ok((version, None));
            }
            Ok::<_, object_store::Error>((version, Some(got.bytes().await?.to_vec())))
        });
        match result {
            Ok((version, bytes)) => {
                self.seen().insert(key.to_string(), version);
                bytes
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                self.failed("reading an entry", &e);
                None
            }
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        use object_store::PutMode;
        if self.broken.load(Ordering::Relaxed) {
            return Ok(());
        }
        let path = self.path(key);
        // An entry read for this key was unsound: replace that one, unless another writer
        // already has. Otherwise create: the first writer of a key wins.
        let mode = match self.seen().remove(key) {
            Some(version) if version.e_tag.is_some() || version.version.is_some() => PutMode::Update(version),
            Some(_) => PutMode::Overwrite,
            None => PutMode::Create,
        };
        let put = |mode: PutMode| {
            let payload = object_store::PutPayload::from(bytes.to_vec());
            self.runtime.block_on(self.store.put_opts(&path, payload, mode.into()))
        };
        let result = match put(mode) {
            // The store cannot put conditionally: last writer wins.
            Err(object_store::Error::NotImplemented { .. }) => put(PutMode::Overwrite),
            r => r,
        };
        match result {
            Ok(_) => {}
            // Another shard wrote this key first, or replaced the damaged entry first.
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
            Err(e) => self.failed("writing an entry", &e),
        }
        Ok(())
    }

    /// Object stores keep no access time that a lifecycle rule could use, and rewriting an entry
    /// to mark it would cost a put per hit: nothing.
    fn touch(&self, _key: &str) {}

    /// Left to the bucket's lifecycle rules (`docs/scale.md`): listing a shared cache at the end
    /// of every shard would cost more than it saves, and shards would evict each other's work.
    fn evict(&self, _max_bytes: u64) -> std::io::Result<Option<u64>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    /// The key's full text (the file name is its SHA-256): checked on every read.
    key: String,
    /// SHA-256 of `node`.
    check: String,
    /// The inventory as JSON.
    node: String,
}

/// Where a file's bytes come from, as far as the key is concerned.
pub enum Context<'a> {
    /// A local file, by its name.
    Local(&'a str),
    /// A download.
    Remote,
}

/// The cache of one run.
pub struct Cache {
    backend: Box<dyn Backend>,
    build: String,
    max_bytes: u64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub skipped_downloads: AtomicU64,
}

static ACTIVE: OnceLock<Cache> = OnceLock::new();

/// The run's cache, if `--cache` (or `MODELGATE_CACHE`) asked for one.
pub fn active() -> Option<&'static Cache> {
    ACTIVE.get()
}

/// `s3://…`, `gs://…`, `az://…` name an object store; anything else is a directory.
fn store_location(arg: &Path) -> Result<Option<modelgate_remote::objstore::Location>, GateError> {
    let Some(text) = arg.to_str() else { return Ok(None) };
    let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("s3" | "gs" | "az")) {
        return Ok(None);
    }
    modelgate_remote::objstore::Location::parse(text)
        .map(Some)
        .map_err(|e| GateError::Usage(format!("--cache: {e}")))
}

/// Opens the cache for this run: `--cache DIR|URL`, else `MODELGATE_CACHE`; the size limit (of
/// a directory) is `--cache-max-size`, else `MODELGATE_CACHE_MAX_SIZE`, else 1 GiB.
pub fn install(dir: Option<&Path>, max: Option<&str>) -> Result<(), GateError> {
    let env_dir = std::env::var_os("MODELGATE_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from);
    let Some(dir) = dir.map(Path::to_path_buf).or(env_dir) else { return Ok(()) };
    let env_max = std::env::var("MODELGATE_CACHE_MAX_SIZE").ok().filter(|v| !v.trim().is_empty());
    let max_bytes = match max.map(str::to_string).or(env_max) {
        Some(text) => parse_size(&text).ok_or_else(|| {
            GateError::Usage(format!("cache size {text:?}: expected bytes, such as 500M or 20G"))
        })?,
        None => DEFAULT_MAX_BYTES,
    };
    let backend: Box<dyn Backend> = match store_location(&dir)? {
        Some(location) => Box::new(StoreBackend::new(&location)?),
        None => {
            Box::new(DirBackend::new(&dir).map_err(|source| GateError::Output { path: dir.clone(), source })?)
        }
    };
    let cache = Cache {
        backend,
        build: build_id()?,
        max_bytes,
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        skipped_downloads: AtomicU64::new(0),
    };
    let _ = ACTIVE.set(cache);
    Ok(())
}

/// `123`, `500K`, `20M`, `2G`, `1T` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The version and the executable's own SHA-256.
fn build_id() -> Result<String, GateError> {
    let exe = std::env::current_exe()
        .map_err(|e| GateError::Usage(format!("--cache: cannot find the running executable: {e}")))?;
    let (sha, _) = hash_file(&exe)?;
    Ok(format!("{} {}", env!("CARGO_PKG_VERSION"), crate::merge::hex(&sha)))
}

/// SHA-256 and length of a file, read once.
pub fn hash_file(path: &Path) -> Result<([u8; 32], u64), GateError> {
    let err = |e: std::io::Error| GateError::Input { path: path.to_path_buf(), why: e.to_string() };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h.finalize().into(), len))
}

impl Cache {
    fn key_text(&self, context: &Context<'_>, sha256: &str, size: u64) -> String {
        let limits = format!("{:?}", modelgate_formats::Limits::default());
        let from = match context {
            Context::Local(name) => format!("local {name:?}"),
            Context::Remote => "remote".to_string(),
        };
        format!(
            "modelgate-cache {CACHE_FORMAT}\nbuild {}\nlimits {}\nfrom {from}\nsha256 {sha256}\nsize {size}\n",
            self.build,
            crate::merge::hex(&Sha256::digest(limits.as_bytes()))
        )
    }

    /// The inventory cached for these bytes, if there is a sound entry.
    pub fn get(&self, context: &Context<'_>, sha256: &str, size: u64) -> Option<Node> {
        let text = self.key_text(context, sha256, size);
        let key = crate::merge::hex(&Sha256::digest(text.as_bytes()));
        let node = self.backend.get(&key).and_then(|bytes| {
            let entry: Entry = serde_json::from_slice(&bytes).ok()?;
            if entry.format != CACHE_FORMAT
                || entry.key != text
                || entry.check != crate::merge::hex(&Sha256::digest(entry.node.as_bytes()))
            {
                return None;
            }
            let node: Node = serde_json::from_str(&entry.node).ok()?;
            (crate::merge::hex(&node.sha256) == sha256 && node.size == size).then_some(node)
        });
        match &node {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.backend.touch(&key);
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        node
    }

    /// Stores an inventory (errors only cost a future re-parse, so they are not fatal).
    pub fn put(&self, context: &Context<'_>, node: &Node) {
        let sha = crate::merge::hex(&node.sha256);
        let text = self.key_text(context, &sha, node.size);
        let key = crate::merge::hex(&Sha256::digest(text.as_bytes()));
        let Ok(json) = serde_json::to_string(node) else { return };
        let entry = Entry {
            format: CACHE_FORMAT,
            key: text,
            check: crate::merge::hex(&Sha256::digest(json.as_bytes())),
            node: json,
        };
        if let Ok(bytes) = serde_json::to_vec(&entry)
            && let Err(e) = self.backend.put(&key, &bytes)
        {
            eprintln!("modelgate: warning: cannot write a cache entry: {e}");
        }
    }

    /// Scans a local file through the cache: hash, look up, and parse only on a miss.
    pub fn scan_local(
        &self,
        target: &Target,
        scan: impl FnOnce() -> Result<Node, GateError>,
    ) -> Result<Node, GateError> {
        let name = target.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let context = Context::Local(&name);
        let (sha, size) = hash_file(&target.path)?;
        let sha = crate::merge::hex(&sha);
        if let Some(node) = self.get(&context, &sha, size).filter(local_cacheable) {
            return Ok(node);
        }
        let node = scan()?;
        // Only what was hashed above (the file did not change in between), and only inventories
        // that depend on nothing but the bytes and the name.
        if crate::merge::hex(&node.sha256) == sha && node.size == size && local_cacheable(&node) {
            self.put(&context, &node);
        }
        Ok(node)
    }

    /// End of the run: evicts down to the size limit and says what the cache did.
    pub fn finish(&self, quiet: bool) {
        let kept = match self.backend.evict(self.max_bytes) {
            Ok(Some(n)) => format!("{} kept", crate::report::text::human_bytes(n)),
            Ok(None) => format!("in {} (eviction: the store's lifecycle rules)", self.backend.describe()),
            Err(e) => {
                eprintln!("modelgate: warning: cache eviction failed: {e}");
                format!("in {}", self.backend.describe())
            }
        };
        if !quiet {
            let skipped = self.skipped_downloads.load(Ordering::Relaxed);
            eprintln!(
                "modelgate: cache: {} hit(s), {} miss(es){}, {kept}",
                self.hits.load(Ordering::Relaxed),
                self.misses.load(Ordering::Relaxed),
                if skipped > 0 { format!(", {skipped} download(s) skipped") } else { String::new() },
            );
        }
    }
}

/// Inventories of local files that depend on the file's surroundings are never cached.
fn local_cacheable(node: &Node) -> bool {
    !matches!(node.format, Format::Json | Format::Onnx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry file larger than any entry modelgate writes is not read (a sparse file: no disk).
    #[test]
    fn an_oversized_directory_entry_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let backend = DirBackend::new(dir.path()).unwrap();
        backend.put("abcdef", b"{}").unwrap();
        assert_eq!(backend.get("abcdef").as_deref(), Some(&b"{}"[..]));
        std::fs::File::options()
            .write(true)
            .open(backend.path("abcdef"))
            .unwrap()
            .set_len(MAX_STORED_ENTRY + 1)
            .unwrap();
        assert!(backend.get("abcdef").is_none());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("5 MiB"), Some(5 << 20));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn eviction_keeps_the_most_recent() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBackend::new(dir.path()).unwrap();
        for (i, key) in ["aa01", "aa02", "bb03"].iter().enumerate() {
            b.put(key, &[b'x'; 100]).unwrap();
            let f = std::fs::File::options().append(true).open(b.path(key)).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64)).unwrap();
        }
        assert_eq!(b.evict(1000).unwrap(), Some(300));
        assert_eq!(b.evict(250).unwrap(), Some(200));
        assert!(b.get("aa01").is_none() && b.get("aa02").is_some() && b.get("bb03").is_some());
    }
}
