//! The crate's error type for start-up, I/O and transport. A rule that cannot apply is not an
//! error: it is a [`Change`](crate::harden::Change) with a skip reason.

use std::path::PathBuf;

use crate::harden::{HardenError, PolicyError};

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy file is invalid.
    #[error("{path}: {source}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: PolicyError,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file (`-` for stdin/stdout).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input document is not valid YAML/JSON.
    #[error("{source_name}: document {document} (line {line}, column {column}): {message}")]
    Manifest {
        /// The input file.
        source_name: String,
        /// 1-based document number in the stream.
        document: usize,
        /// 1-based line where the problem is (or where the document starts).
        line: usize,
        /// 1-based column where the problem is.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A flag has an unusable value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The output could not be rendered as JSON.
    #[error("cannot render the output as JSON: {0}")]
    Render(#[source] serde_json::Error),
    /// The server could not start.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// The cluster could not be scanned.
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    /// The managed certificates (`serve --manage-certs`) could not be set up.
    #[error("managed certificates: {0}")]
    Certs(#[from] crate::certs::CertError),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A workload cannot be hardened (e.g. a field of the wrong type).
    #[error("{source_name}: document {document} (line {line}, column {column}): {source}")]
    Harden {
        /// The input file.
        source_name: String,
        /// 1-based document number in the stream.
        document: usize,
        /// 1-based line of the field in error (or where the document starts).
        line: usize,
        /// 1-based column of the field in error.
        column: usize,
        /// The rule error.
        #[source]
        source: HardenError,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
