//! The client against a fake hub on loopback: listings, streaming scans with range requests,
//! digests, redirects, the token, retries, timeouts and broken transfers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakehub;

use fakehub::{EVIL_PICKLE, FakeHub, Quirks, Repo, example, git_blob_sha256, sha256_hex};
use modelgate_formats::Format;
use modelgate_formats::stream::hex;
use modelgate_remote::fetch::{Expect, Fetched, Options, Problem, fetch};
use modelgate_remote::http::{Http, Settings};
use modelgate_remote::{Error, hub};
use reqwest::Url;
use std::time::{Duration, Instant};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn http(hub: &FakeHub, token: Option<&str>) -> Http {
    let mut s = Settings::new(Url::parse(&hub.endpoint).unwrap());
    s.token = token.map(str::to_string);
    s.read_timeout = Duration::from_secs(2);
    s.connect_timeout = Duration::from_secs(2);
    s.backoff = Duration::from_millis(10);
    s.retries = 3;
    Http::new(s).unwrap()
}

/// Lists the repository and fetches one file, streaming (no in-memory shortcut).
fn get(h: &Http, repo: &str, path: &str, in_memory_max: u64) -> Result<Fetched, Error> {
    let listing = hub::list(h, repo, "main")?;
    let f = listing.files.iter().find(|f| f.path == path).unwrap();
    let url = hub::resolve_url(&h.settings().endpoint, repo, &listing.commit, path).unwrap();
    let expect = Expect { size: f.size, sha256: f.sha256.clone(), git_blob: f.git_blob.clone() };
    let opts = Options { in_memory_max, ..Options::default() };
    fetch(h, &url, path, &expect, &opts)
}

#[test]
fn a_zip_streams_with_range_requests_and_matches_the_listing() {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    hub.add("org/model", Repo::new(COMMIT).file("model.pt", &model).file("config.json", b"{}"));
    let h = http(&hub, None);
    let listing = hub::list(&h, "org/model", "main").unwrap();
    assert_eq!(listing.commit, COMMIT);
    assert_eq!(listing.files.len(), 2);
    for in_memory_max in [0, 8 << 20] {
        let got = get(&h, "org/model", "model.pt", in_memory_max).unwrap();
        assert_eq!(got.node.format, Format::PytorchZip);
        assert_eq!(hex(&got.node.sha256), sha256_hex(&model));
        assert_eq!(got.node.size, model.len() as u64);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.range_requests > 0, in_memory_max == 0, "range requests only when streaming");
        // The same inventory as a local scan of the same bytes.
        let local = modelgate_formats::scan_bytes(&model, Default::default());
        assert_eq!(got.node.children.len(), local.children.len());
    }
}

#[test]
fn range_answers_that_differ_from_the_body_are_reported() {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    let mut lie = model.clone();
    let n = lie.len();
    lie[n - 30] ^= 0xff; // inside the central directory
    let quirks = Quirks { range_lie: Some(lie), ..Quirks::default() };
    hub.add("org/model", Repo::new(COMMIT).quirky("model.pt", &model, quirks));
    let got = get(&http(&hub, None), "org/model", "model.pt", 0).unwrap();
    assert!(got.problems.iter().any(|p| matches!(p, Problem::Inconsistent { .. })), "{:?}", got.problems);
}

#[test]
fn servers_without_ranges_get_a_forward_only_scan() {
    let hub = FakeHub::start();
    let model = example("examples/malicious-model/pytorch_model.bin");
    let quirks = Quirks { no_ranges: true, ..Quirks::default() };
    hub.add("org/model", Repo::new(COMMIT).quirky("pytorch_model.bin", &model, quirks));
    let got = get(&http(&hub, None), "org/model", "pytorch_model.bin", 0).unwrap();
    assert_eq!(got.range_requests, 0);
    assert_eq!(got.node.format, Format::PytorchZip);
    assert!(hub.seen().iter().all(|s| s.header("Range").is_none()));
}

#[test]
fn digests_and_sizes_are_checked_against_the_listing() {
    let hub = FakeHub::start();
    let wrong = Quirks { listed_sha256: Some("0".repeat(64)), ..Quirks::default() };
    let short = Quirks { listed_size: Some(EVIL_PICKLE.len() as u64 + 5), ..Quirks::default() };
    let git = Quirks { in_git: true, ..Quirks::default() };
    let long = Quirks { listed_size: Some(EVIL_PICKLE.len() as u64 - 3), ..Quirks::default() };
    let repo = Repo::new(COMMIT)
        .quirky("a.pkl", EVIL_PICKLE, wrong)
        .quirky("b.pkl", EVIL_PICKLE, short)
        .quirky("config.json", b"{\"a\": 1}", git)
        .quirky("d.pkl", EVIL_PICKLE, long);
    hub.add("org/model", repo);
    let h = http(&hub, None);
    for max in [0, 1 << 20] {
        let a = get(&h, "org/model", "a.pkl", max).unwrap();
        assert!(matches!(&a.problems[..], [Problem::Sha256 { expected, .. }] if *expected == "0".repeat(64)));
        assert_eq!(a.node.format, Format::Pickle);
        let b = get(&h, "org/model", "b.pkl", max).unwrap();
        assert!(b.problems.iter().any(|p| matches!(p, Problem::Size { .. })), "{:?}", b.problems);
        // A body longer than listed is cut one byte past the listed size.
        let d = get(&h, "org/model", "d.pkl", max).unwrap();
        let cut =
            Problem::Size { expected: EVIL_PICKLE.len() as u64 - 3, actual: EVIL_PICKLE.len() as u64 - 2 };
        assert!(d.problems.contains(&cut), "{:?}", d.problems);
        let c = get(&h, "org/model", "config.json", max).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }
}

#[test]
fn the_token_goes_to_the_hub_only_and_redirects_still_download() {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    let mut repo =
        Repo::new(COMMIT).quirky("model.pt", &model, Quirks { via_cdn: true, ..Quirks::default() });
    repo.token = Some("hf_test_token".into());
    hub.add("org/gated", repo);
    // Without the token: a clear refusal.
    let err = get(&http(&hub, None), "org/gated", "model.pt", 0).err().unwrap().to_string();
    assert!(err.contains("401") && err.contains("HF_TOKEN"), "{err}");
    // With it: the hub sees it, the CDN never does, and the download (with its range requests)
    // works through the redirect.
    let before = hub.seen().len();
    let got = get(&http(&hub, Some("hf_test_token")), "org/gated", "model.pt", 0).unwrap();
    assert!(got.problems.is_empty());
    assert!(got.range_requests > 0);
    let seen = hub.seen().split_off(before);
    assert!(seen.iter().any(|s| s.server == "cdn"));
    for s in &seen {
        let auth = s.header("Authorization");
        match s.server {
            "cdn" => assert_eq!(auth, None, "token leaked to {s:?}"),
            _ if s.target.contains("/resolve/") => assert!(auth.is_some()),
            _ => {}
        }
    }
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let hub = FakeHub::start();
    let quirks = Quirks { rate_limit_first: 2, ..Quirks::default() };
    let flaky = Quirks { unavailable_first: 1, ..Quirks::default() };
    hub.add(
        "org/model",
        Repo::new(COMMIT).quirky("a.pkl", EVIL_PICKLE, quirks).quirky("b.pkl", EVIL_PICKLE, flaky),
    );
    let h = http(&hub, None);
    assert!(get(&h, "org/model", "a.pkl", 1 << 20).unwrap().problems.is_empty());
    assert!(get(&h, "org/model", "b.pkl", 1 << 20).unwrap().problems.is_empty());
    let hits = hub.seen().iter().filter(|s| s.target.ends_with("/a.pkl")).count();
    assert_eq!(hits, 3);
    // Retries run out: the last status is the error.
    let forever = Quirks { rate_limit_first: 100, ..Quirks::default() };
    hub.add("org/busy", Repo::new(COMMIT).quirky("a.pkl", EVIL_PICKLE, forever));
    let err = get(&h, "org/busy", "a.pkl", 1 << 20).err().unwrap().to_string();
    assert!(err.contains("429"), "{err}");
}

#[test]
fn truncated_and_stalled_bodies_are_errors() {
    let hub = FakeHub::start();
    let model = example("examples/benign-model/model.pt");
    let cut = Quirks { truncate_at: Some(100), ..Quirks::default() };
    let stall = Quirks { stall_after: Some(100), ..Quirks::default() };
    hub.add(
        "org/model",
        Repo::new(COMMIT).quirky("cut.pt", &model, cut.clone()).quirky("stall.pt", &model, stall.clone()),
    );
    let h = http(&hub, None);
    for max in [0, 1 << 20] {
        let err = get(&h, "org/model", "cut.pt", max).err().expect("a truncated body is an error");
        assert!(matches!(err, Error::Transfer { .. }), "{err}");
        let started = Instant::now();
        let err = get(&h, "org/model", "stall.pt", max).err().expect("a stalled body is an error");
        assert!(err.to_string().contains("timed out") || matches!(err, Error::Transfer { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

#[test]
fn downloads_go_to_a_temporary_file_only_when_asked() {
    let hub = FakeHub::start();
    hub.add("org/model", Repo::new(COMMIT).file("a.pkl", EVIL_PICKLE));
    let h = http(&hub, None);
    let dir = tempfile::tempdir().unwrap();
    let listing = hub::list(&h, "org/model", "main").unwrap();
    let url = hub::resolve_url(&h.settings().endpoint, "org/model", &listing.commit, "a.pkl").unwrap();
    let opts = Options { download_dir: Some(dir.path()), ..Options::default() };
    let got = fetch(&h, &url, "a.pkl", &Expect::default(), &opts).unwrap();
    let temp = got.download.unwrap();
    assert_eq!(std::fs::read(&temp).unwrap(), EVIL_PICKLE);
    assert!(temp.file_name().unwrap().to_string_lossy().starts_with(".modelgate-"));
    drop(temp);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "dropped means deleted");
}

#[test]
fn redirects_are_bounded_and_never_downgrade() {
    let hub = FakeHub::start();
    let to = |url: &str| Quirks { redirect_to: Some(url.to_string()), ..Quirks::default() };
    hub.plain("/loop", b"", to(&format!("{}/loop", hub.endpoint)));
    hub.plain("/downgrade", b"", to("http://example.com/model.bin"));
    hub.plain("/elsewhere", b"", to("ftp://example.com/model.bin"));
    let h = http(&hub, None);
    let fetch_path = |p: &str| {
        let url = Url::parse(&format!("{}{p}", hub.endpoint)).unwrap();
        fetch(&h, &url, p, &Expect::default(), &Options::default()).err().unwrap().to_string()
    };
    assert!(fetch_path("/loop").contains("more than 5 redirects"));
    assert!(fetch_path("/downgrade").contains("refusing a redirect"));
    assert!(fetch_path("/elsewhere").contains("refusing a redirect"));
    assert_eq!(hub.seen().iter().filter(|s| s.target == "/loop").count(), 6);
}

#[test]
fn redirects_stay_out_of_other_address_ranges() {
    // The source is on loopback, so redirects within loopback (another address, another port)
    // are followed; redirects into private or link-local ranges are refused before any
    // connection is made (only plain-http targets here, which no version of the client would
    // connect to: nothing leaves this machine even if the check regressed).
    let hub = FakeHub::start();
    let to = |url: &str| Quirks { redirect_to: Some(url.to_string()), ..Quirks::default() };
    hub.plain("/ok.pkl", EVIL_PICKLE, Quirks::default());
    hub.plain("/to-loopback", b"", to(&format!("{}/ok.pkl", hub.cdn)));
    hub.plain("/to-private", b"", to("http://10.1.2.3/x.pkl"));
    hub.plain("/to-metadata", b"", to("http://169.254.169.254/latest/meta-data/"));
    let h = http(&hub, None);
    let fetch_path = |p: &str| {
        let url = Url::parse(&format!("{}{p}", hub.endpoint)).unwrap();
        fetch(&h, &url, p, &Expect::default(), &Options::default())
    };
    let got = fetch_path("/to-loopback").unwrap();
    assert_eq!(got.node.size, EVIL_PICKLE.len() as u64);
    assert!(hub.seen().iter().any(|s| s.server == "cdn" && s.target == "/ok.pkl"));
    for (p, range) in [("/to-private", "private"), ("/to-metadata", "link-local")] {
        let err = fetch_path(p).err().unwrap().to_string();
        assert!(err.contains("refusing a redirect") && err.contains(range), "{p}: {err}");
    }
}

#[test]
fn git_blob_ids_in_both_object_formats_are_checked() {
    let hub = FakeHub::start();
    let data = b"{\"a\": 1}";
    let git = |id: Option<String>| Quirks { in_git: true, blob_id: id, ..Quirks::default() };
    let repo = Repo::new(COMMIT)
        .quirky("sha1.json", data, git(None))
        .quirky("sha256.json", data, git(Some(git_blob_sha256(data).to_uppercase())))
        .quirky("wrong256.json", data, git(Some(git_blob_sha256(b"other"))))
        .quirky("wrong1.json", data, git(Some("0".repeat(40))))
        .quirky("odd.json", data, git(Some("sha1-is-what-i-am".into())));
    hub.add("org/model", repo);
    let h = http(&hub, None);
    for max in [0, 1 << 20] {
        assert!(get(&h, "org/model", "sha1.json", max).unwrap().problems.is_empty());
        assert!(get(&h, "org/model", "sha256.json", max).unwrap().problems.is_empty());
        let p = get(&h, "org/model", "wrong256.json", max).unwrap().problems;
        assert!(
            matches!(&p[..], [Problem::GitBlob { expected, actual }]
                if *expected == git_blob_sha256(b"other") && *actual == git_blob_sha256(data)),
            "{p:?}"
        );
        let p = get(&h, "org/model", "wrong1.json", max).unwrap().problems;
        assert!(matches!(&p[..], [Problem::GitBlob { .. }]), "{p:?}");
        let p = get(&h, "org/model", "odd.json", max).unwrap().problems;
        assert!(
            matches!(&p[..], [Problem::Unverifiable { why }] if why.contains("sha1-is-what-i-am")),
            "{p:?}"
        );
    }
}

#[test]
fn a_trickle_cannot_outlast_the_download_deadline() {
    // One byte every 100 ms never trips the read timeout; the per-file deadline stops it.
    let hub = FakeHub::start();
    let trickle = Quirks { trickle: Some(Duration::from_millis(100)), ..Quirks::default() };
    hub.add("org/model", Repo::new(COMMIT).quirky("slow.pkl", &[b'N'; 200], trickle));
    let mut s = Settings::new(Url::parse(&hub.endpoint).unwrap());
    s.read_timeout = Duration::from_secs(5);
    s.download_timeout = Duration::from_secs(2);
    let h = Http::new(s).unwrap();
    for max in [0, 1 << 20] {
        let started = Instant::now();
        let err = get(&h, "org/model", "slow.pkl", max).err().expect("past the deadline").to_string();
        assert!(err.contains("download deadline of 2 s"), "{err}");
        assert!(!err.contains("read timeout"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    }
}
