//! `[[signatures]]`: which models must be signed, and by whom.
//!
//! Each table maps a path glob (matched against model directories and files) to the signers
//! accepted for it: a Sigstore keyless identity and issuer, public keys, or CA roots. The policy
//! only checks that a table is well formed; verifying is the command's job (`modelgate-sign`).

use crate::config::PolicyError;
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SignatureFile {
    path: String,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    identity_regexp: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    issuer_regexp: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    ca_roots: Vec<String>,
    #[serde(default)]
    trusted_root: Option<String>,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

/// An identity or issuer as written: exact, or a regular expression (anchored by modelgate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `identity = "…"`.
    Exact(String),
    /// `identity-regexp = "…"`.
    Regexp(String),
}

/// Who may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Sigstore keyless.
    Keyless {
        /// The certificate identity (SAN).
        identity: Pattern,
        /// The OIDC issuer.
        issuer: Pattern,
        /// A `trusted_root.json` instead of the embedded public-good root.
        trusted_root: Option<String>,
    },
    /// Public keys (PEM files); any one of them.
    Keys(Vec<String>),
    /// Root certificates (PEM files) the signing certificate must chain to, and optionally the
    /// SAN it must carry.
    CaRoots {
        /// The PEM files.
        roots: Vec<String>,
        /// The required SAN.
        identity: Option<Pattern>,
    },
}

/// One `[[signatures]]` table.
#[derive(Debug, Clone)]
pub struct SignatureRule {
    /// The path glob as written.
    pub path: String,
    matcher: GlobMatcher,
    /// Where the signature is, if not found next to the model.
    pub signature: Option<String>,
    /// The accepted signers.
    pub trust: Trust,
    /// More paths inside the model to leave out (like model_signing's `--ignore-paths`).
    pub ignore_paths: Vec<String>,
}

impl SignatureRule {
    /// True if the model at `path` (`/`-separated, as reported) is covered.
    pub fn covers(&self, path: &str) -> bool {
        self.matcher.is_match(path.trim_end_matches('/'))
    }

    pub(crate) fn from_file(raw: SignatureFile, origin: &str) -> Result<SignatureRule, PolicyError> {
        let at = format!("{origin}: [[signatures]] {:?}", raw.path);
        let err = |msg: &str| PolicyError(format!("{at}: {msg}"));
        let matcher = GlobBuilder::new(raw.path.trim_end_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|e| err(&format!("bad path glob: {e}")))?
            .compile_matcher();
        let pattern = |exact: Option<String>,
                       regexp: Option<String>,
                       key: &str|
         -> Result<Option<Pattern>, PolicyError> {
            match (exact, regexp) {
                (Some(_), Some(_)) => Err(err(&format!("give `{key}` or `{key}-regexp`, not both"))),
                (Some(e), None) if e.trim().is_empty() => Err(err(&format!("`{key}` is empty"))),
                (Some(e), None) => Ok(Some(Pattern::Exact(e))),
                (None, Some(r)) => {
                    regex::Regex::new(&format!("^(?:{r})$"))
                        .map_err(|e| err(&format!("`{key}-regexp` is not a regular expression: {e}")))?;
                    Ok(Some(Pattern::Regexp(r)))
                }
                (None, None) => Ok(None),
            }
        };
        let identity = pattern(raw.identity, raw.identity_regexp, "identity")?;
        let issuer = pattern(raw.issuer, raw.issuer_regexp, "issuer")?;
        let modes =
            [issuer.is_some(), !raw.keys.is_empty(), !raw.ca_roots.is_empty()].iter().filter(|m| **m).count();
        if modes != 1 {
            return Err(err(
                "name exactly one kind of signer: `issuer`/`issuer-regexp` with `identity`/`identity-regexp` (keyless), `keys` (public keys), or `ca-roots` (certificates)",
            ));
        }
        if raw.trusted_root.is_some() && issuer.is_none() {
            return Err(err("`trusted-root` applies to keyless signers only"));
        }
        let trust = if let Some(issuer) = issuer {
            let identity = identity.ok_or_else(|| {
                err("a keyless signer needs `identity` or `identity-regexp` as well as the issuer (anyone can get a certificate from an issuer)")
            })?;
            Trust::Keyless { identity, issuer, trusted_root: raw.trusted_root }
        } else if !raw.keys.is_empty() {
            if identity.is_some() {
                return Err(err("`identity` does not apply to `keys` (a key has no identity)"));
            }
            Trust::Keys(raw.keys)
        } else {
            Trust::CaRoots { roots: raw.ca_roots, identity }
        };
        Ok(SignatureRule {
            path: raw.path,
            matcher,
            signature: raw.signature,
            trust,
            ignore_paths: raw.ignore_paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    use super::*;

    #[test]
    fn tables_name_exactly_one_kind_of_signer() {
        let p = Policy::parse(
            r#"
[[signatures]]
path = "models/*"
identity-regexp = 'https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v.*'
issuer = "https://token.actions.githubusercontent.com"

[[signatures]]
path = "vendor/**"
keys = ["keys/vendor.pub"]

[[signatures]]
path = "internal/model"
ca-roots = ["pki/root.crt"]
identity = "ml-release@example.com"
signature = "sigs/internal.sig"
"#,
            "p",
        )
        .unwrap();
        assert_eq!(p.signatures.len(), 3);
        assert!(p.signatures[0].covers("models/bert") && !p.signatures[0].covers("models/bert/x.pt"));
        assert!(p.signatures[1].covers("vendor/a/b.pt"));
        assert!(matches!(&p.signatures[2].trust, Trust::CaRoots { identity: Some(Pattern::Exact(_)), .. }));
        for bad in [
            "path = \"m\"\n",
            "path = \"m\"\nissuer = \"https://x\"\n",
            "path = \"m\"\nkeys = [\"k\"]\nca-roots = [\"r\"]\n",
            "path = \"m\"\nkeys = [\"k\"]\nidentity = \"x\"\n",
            "path = \"m\"\nidentity = \"a\"\nidentity-regexp = \"a\"\nissuer = \"i\"\n",
            "path = \"m\"\nidentity-regexp = \"(\"\nissuer = \"i\"\n",
            "path = \"m\"\nkeys = [\"k\"]\ntrusted-root = \"t\"\n",
            "path = \"m\"\nkeys = [\"k\"]\nkey = \"k\"\n",
        ] {
            let err = Policy::parse(&format!("[[signatures]]\n{bad}"), "p.toml").unwrap_err().0;
            assert!(err.contains("p.toml"), "{err}");
        }
    }
}
