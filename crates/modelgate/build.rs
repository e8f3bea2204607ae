//! Records what `modelgate --version` shows besides the package version: the commit the binary
//! was built from and a digest of the rule data (the catalogue and the pickle allow/deny lists
//! compiled into the policy crate), so two builds with the same version but different rule data
//! are told apart.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelgate-policy/data");
    let mut hash = Sha256::new();
    for name in ["rules.toml", "pickle-allow.toml", "pickle-deny.toml"] {
        let file = data.join(name);
        println!("cargo:rerun-if-changed={}", file.display());
        hash.update(name.as_bytes());
        hash.update(std::fs::read(&file).unwrap_or_default());
    }
    let digest: String = hash.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=MODELGATE_RULES_DIGEST={digest}");

    // The commit: MODELGATE_COMMIT when the builder sets it (a source tarball has no git), else
    // git's HEAD; none when neither is known (the version line then omits it).
    println!("cargo:rerun-if-env-changed=MODELGATE_COMMIT");
    let commit = std::env::var("MODELGATE_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let git = |args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        for path in
            [git(&["rev-parse", "--git-path", "HEAD"]), git(&["rev-parse", "--git-path", "refs/heads"])]
                .into_iter()
                .flatten()
        {
            let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            println!("cargo:rerun-if-changed={}", full.display());
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=MODELGATE_COMMIT={}", commit.unwrap_or_default());
}
