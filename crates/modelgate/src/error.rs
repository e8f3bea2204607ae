//! Why the gate could not run (exit code 2). Findings about models are never errors.

use std::io;
use std::path::PathBuf;

/// The gate itself failed: bad arguments or configuration, an unreadable path, an unwritable
/// report.
#[derive(Debug)]
pub enum GateError {
    /// The policy file is unusable.
    Policy(modelgate_policy::PolicyError),
    /// An input path does not exist or cannot be read.
    Input { path: PathBuf, why: String },
    /// A report could not be written.
    Output { path: PathBuf, source: io::Error },
    /// A command-line argument is unusable.
    Usage(String),
}

impl std::fmt::Display for GateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateError::Policy(e) => write!(f, "{e}"),
            GateError::Input { path, why } => write!(f, "{}: {why}", path.display()),
            GateError::Output { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            GateError::Usage(msg) => f.write_str(msg),
        }
    }
}

impl From<modelgate_policy::PolicyError> for GateError {
    fn from(e: modelgate_policy::PolicyError) -> GateError {
        GateError::Policy(e)
    }
}
