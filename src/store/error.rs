//! The store's error: what failed, in the store's words, and the error that caused it.
//!
//! `Display` shows the context only (`store unavailable: …`); `source()` walks the cause chain
//! (the sqlx or SDK error and its own sources). `{:#}` renders context and chain on one line,
//! which is what a log line wants.
use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// Any error kept as a cause.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What failed, and why when there is an underlying error.
#[derive(Debug)]
pub struct Cause {
    context: Cow<'static, str>,
    source: Option<BoxError>,
}

impl Cause {
    pub fn new(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Cause {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub fn context(&self) -> &str {
        &self.context
    }
}

/// A cause the store detected itself, with no underlying error.
impl From<&'static str> for Cause {
    fn from(context: &'static str) -> Self {
        Cause {
            context: context.into(),
            source: None,
        }
    }
}

impl From<Cow<'static, str>> for Cause {
    fn from(context: Cow<'static, str>) -> Self {
        Cause {
            context,
            source: None,
        }
    }
}

impl From<String> for Cause {
    fn from(context: String) -> Self {
        Cause {
            context: context.into(),
            source: None,
        }
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The store could not be reached or answered with a transient failure.
    Unavailable(Cause),
    Internal(Cause),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn unavailable(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(Cause::new(context, source))
    }

    pub fn internal(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        StoreError::Internal(Cause::new(context, source))
    }

    /// Stored data the store cannot read back.
    pub fn corrupt(what: &str, source: impl Into<BoxError>) -> Self {
        Self::internal(format!("corrupt {what} in store"), source)
    }

    pub fn cause(&self) -> &Cause {
        match self {
            StoreError::Unavailable(c) | StoreError::Internal(c) => c,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(c) => write!(f, "store unavailable: {}", c.context)?,
            StoreError::Internal(c) => write!(f, "store failure: {}", c.context)?,
        }
        if f.alternate() {
            let mut next = self.source();
            while let Some(e) = next {
                write!(f, ": {e}")?;
                next = e.source();
            }
        }
        Ok(())
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause()
            .source
            .as_deref()
            .map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Io;
    impl fmt::Display for Io {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection reset")
        }
    }
    impl Error for Io {}

    #[test]
    fn display_shows_the_context_and_the_chain_is_kept_as_sources() {
        let e = StoreError::unavailable("begin write", Io);
        assert_eq!(e.to_string(), "store unavailable: begin write");
        assert_eq!(e.source().unwrap().to_string(), "connection reset");
        assert_eq!(
            format!("{e:#}"),
            "store unavailable: begin write: connection reset"
        );
        assert!(matches!(e, StoreError::Unavailable(_)));
    }

    #[test]
    fn a_cause_without_an_underlying_error_has_no_source() {
        let e = StoreError::Internal("writer stopped".into());
        assert!(e.source().is_none());
        assert_eq!(format!("{e:#}"), "store failure: writer stopped");
        let c = StoreError::corrupt("date", "2026-13-01".to_owned());
        assert_eq!(
            format!("{c:#}"),
            "store failure: corrupt date in store: 2026-13-01"
        );
    }
}
