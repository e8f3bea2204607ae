//! Identity and issuer matching: exact, or a regular expression that must match the whole value.

use std::fmt;

/// Matches a certificate identity (SAN) or OIDC issuer.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The value equals this string.
    Exact(String),
    /// The whole value matches this expression. cosign's `--certificate-identity-regexp` is
    /// unanchored (`github.com/org/` also matches `https://evil.example/github.com/org/…`); this
    /// one is always anchored at both ends.
    Regex {
        /// The expression as written.
        source: String,
        /// `^(?:source)$`.
        anchored: regex::Regex,
    },
}

impl Matcher {
    /// An exact matcher.
    pub fn exact(value: impl Into<String>) -> Matcher {
        Matcher::Exact(value.into())
    }

    /// A regular-expression matcher, anchored at both ends.
    pub fn regex(source: &str) -> Result<Matcher, String> {
        let anchored = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("bad regular expression {source:?}: {e}"))?;
        Ok(Matcher::Regex { source: source.to_string(), anchored })
    }

    /// True if `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex { anchored, .. } => anchored.is_match(value),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regex { source, .. } => write!(f, "/{source}/"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored() {
        let m =
            Matcher::regex(r"https://github\.com/acme/models/\.github/workflows/release\.yml@refs/tags/v.*")
                .unwrap();
        assert!(m.matches("https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.2.0"));
        assert!(!m.matches(
            "https://evil.example/https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1"
        ));
        let loose = Matcher::regex("github.com/acme/").unwrap();
        assert!(!loose.matches("https://github.com/acme/x"), "unanchored patterns do not match substrings");
        // An alternation cannot escape the anchors.
        let alt = Matcher::regex("a|b").unwrap();
        assert!(alt.matches("a") && !alt.matches("xa") && !alt.matches("bx"));
        assert!(Matcher::regex("(").is_err());
        assert!(Matcher::exact("x").matches("x") && !Matcher::exact("x").matches("xx"));
    }
}
