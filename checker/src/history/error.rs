//! Why a history could not be read.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not the record the format expects; `message` says
    /// what was expected there.
    #[error("{file}:{line}{}: {message}", column.map(|c| format!(":{c}")).unwrap_or_default())]
    Parse {
        file: String,
        line: usize,
        column: Option<usize>,
        message: String,
    },
}

impl HistoryError {
    pub fn parse(
        file: &str,
        line: usize,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        HistoryError::Parse {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}
