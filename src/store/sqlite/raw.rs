//! Scripts run on the writer connection's own `sqlite3` handle, borrowed from sqlx for a run of
//! holds (`SqliteConnection::lock_handle`). Every statement sqlx runs is a command sent to the
//! connection's thread and an answer sent back — two thread switches, more than the statement
//! itself costs. The group commit runs a run of hold scripts here instead, on the writer's own
//! thread (`batch::spawn`), inside the same transaction: one hand-over for the run, none per
//! hold.
//!
//! Parameters are numbered (`?N`) and bound by their number, so a script's statements may each
//! use any of them, in any order.
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, CStr};
use std::fmt;
use std::ptr::{self, NonNull};

/// Turns off SQLite's memory statistics, which take a process-wide mutex on every allocation
/// (and a hold's statements allocate often). Only possible before SQLite initializes, so it is
/// done before the first connection opens; afterwards (a second store in one process) SQLite
/// refuses, harmlessly, and the setting stays as it was.
pub(crate) fn quiet_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a configuration call with its documented `int` argument; SQLite checks
        // that it is not yet initialized and returns SQLITE_MISUSE otherwise.
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        }
    });
}

/// A parameter or a column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

/// What SQLite said when a statement failed.
#[derive(Debug)]
pub(crate) struct RawError {
    pub code: c_int,
    pub message: String,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.code)
    }
}

impl std::error::Error for RawError {}

/// The connection's last error.
///
/// # Safety
/// `db` is an open connection this thread has to itself.
unsafe fn error(db: *mut ffi::sqlite3, code: c_int) -> RawError {
    let message = CStr::from_ptr(ffi::sqlite3_errmsg(db))
        .to_string_lossy()
        .into_owned();
    RawError { code, message }
}

/// The statements of one script, prepared on one connection; finalized when dropped, which must
/// happen before sqlx closes that connection (it panics when SQLite refuses to close a
/// connection that still has statements).
pub(crate) struct Script {
    db: *mut ffi::sqlite3,
    /// Each statement with its parameters: SQLite's index and the value's (`?N` takes
    /// `values[N-1]`), read once here rather than on every run.
    stmts: Vec<(*mut ffi::sqlite3_stmt, Vec<(c_int, usize)>)>,
}

impl Script {
    /// Prepares every statement of `sql`.
    ///
    /// # Safety
    /// `db` is an open connection. This thread has it to itself (sqlx's `LockedSqliteHandle`
    /// held) whenever the script is prepared, run or dropped, and the script is dropped before
    /// sqlx closes the connection.
    pub(crate) unsafe fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Script, RawError> {
        let db = db.as_ptr();
        let mut script = Script {
            db,
            stmts: Vec::new(),
        };
        let bytes = sql.as_bytes();
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let len = c_int::try_from(rest.len()).map_err(|_| RawError {
                code: ffi::SQLITE_TOOBIG,
                message: "script too long".into(),
            })?;
            let mut stmt = ptr::null_mut();
            let mut tail: *const c_char = ptr::null();
            let start = rest.as_ptr().cast::<c_char>();
            let rc = ffi::sqlite3_prepare_v3(db, start, len, 0, &mut stmt, &mut tail);
            if rc != ffi::SQLITE_OK {
                return Err(error(db, rc));
            }
            if !stmt.is_null() {
                // Pushed first, so that it is finalized if its parameters do not read.
                script.stmts.push((stmt, Vec::new()));
                let numbers = parameters(stmt)?;
                script.stmts.last_mut().expect("pushed").1 = numbers;
            }
            let used = if tail.is_null() {
                rest.len()
            } else {
                tail.offset_from(start) as usize
            };
            if used == 0 {
                break;
            }
            at += used;
        }
        Ok(script)
    }

    /// Runs every statement in turn with `values` bound by number (`?N` takes `values[N-1]`,
    /// null past the end) and returns every row they produced, in order. Stops at the first
    /// failing statement; every statement is reset afterwards either way.
    pub(crate) fn run(&mut self, values: &[Value]) -> Result<Vec<Vec<Value>>, RawError> {
        let mut rows = Vec::new();
        for (stmt, numbers) in &self.stmts {
            let stmt = *stmt;
            // SAFETY: the statement belongs to `self.db`, which this thread has to itself
            // (`prepare`'s contract), and the values outlive the step they are bound for.
            let out = unsafe { step_all(self.db, stmt, numbers, values, &mut rows) };
            unsafe {
                ffi::sqlite3_reset(stmt);
                ffi::sqlite3_clear_bindings(stmt);
            }
            out?;
        }
        Ok(rows)
    }
}

#[cfg(test)]
impl Script {
    /// The virtual machine steps every statement ran since the last call (a test's measure of
    /// the work a statement does, independent of the machine's speed).
    pub(crate) fn vm_steps(&mut self) -> i64 {
        self.stmts
            .iter()
            // SAFETY: a prepared statement of this script; reading its counter changes nothing
            // but the counter.
            .map(|&(stmt, _)| unsafe {
                i64::from(ffi::sqlite3_stmt_status(
                    stmt,
                    ffi::SQLITE_STMTSTATUS_VM_STEP,
                    1,
                ))
            })
            .sum()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        for &(stmt, _) in &self.stmts {
            // SAFETY: prepared by `prepare` and finalized once, here.
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
    }
}

/// The statement's parameters, each as SQLite's index and the index of its value: `?N` takes
/// `values[N-1]`. A number no statement of the script uses has no name and is left out.
///
/// # Safety
/// `stmt` is a prepared statement this thread has to itself.
unsafe fn parameters(stmt: *mut ffi::sqlite3_stmt) -> Result<Vec<(c_int, usize)>, RawError> {
    let mut out = Vec::new();
    for i in 1..=ffi::sqlite3_bind_parameter_count(stmt) {
        let name = ffi::sqlite3_bind_parameter_name(stmt, i);
        if name.is_null() {
            continue;
        }
        let number = CStr::from_ptr(name)
            .to_str()
            .ok()
            .and_then(|n| n.strip_prefix('?'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .ok_or_else(|| RawError {
                code: ffi::SQLITE_RANGE,
                message: format!(
                    "parameter {:?} is not of the form ?N",
                    CStr::from_ptr(name).to_string_lossy()
                ),
            })?;
        out.push((i, number));
    }
    Ok(out)
}

/// Binds, steps to the end, collects the rows.
///
/// # Safety
/// As for `Script::run`; `numbers` are `stmt`'s (`parameters`).
unsafe fn step_all(
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    numbers: &[(c_int, usize)],
    values: &[Value],
    rows: &mut Vec<Vec<Value>>,
) -> Result<(), RawError> {
    for &(i, k) in numbers {
        let rc = match values.get(k) {
            None | Some(Value::Null) => ffi::sqlite3_bind_null(stmt, i),
            Some(Value::Int(v)) => ffi::sqlite3_bind_int64(stmt, i, *v),
            Some(Value::Text(s)) => {
                let len = c_int::try_from(s.len()).map_err(|_| RawError {
                    code: ffi::SQLITE_TOOBIG,
                    message: "parameter too long".into(),
                })?;
                // Static: `values` outlives the statement's use of it (reset right after).
                ffi::sqlite3_bind_text(stmt, i, s.as_ptr().cast(), len, ffi::SQLITE_STATIC())
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
    }
    loop {
        match ffi::sqlite3_step(stmt) {
            ffi::SQLITE_ROW => {
                let n = ffi::sqlite3_column_count(stmt);
                let mut row = Vec::with_capacity(n as usize);
                for c in 0..n {
                    row.push(match ffi::sqlite3_column_type(stmt, c) {
                        ffi::SQLITE_NULL => Value::Null,
                        ffi::SQLITE_INTEGER => Value::Int(ffi::sqlite3_column_int64(stmt, c)),
                        ffi::SQLITE_TEXT => {
                            let text = ffi::sqlite3_column_text(stmt, c);
                            let len = ffi::sqlite3_column_bytes(stmt, c) as usize;
                            if text.is_null() {
                                Value::Text(String::new())
                            } else {
                                let bytes = std::slice::from_raw_parts(text, len);
                                let text = std::str::from_utf8(bytes).map_err(|e| RawError {
                                    code: ffi::SQLITE_MISMATCH,
                                    message: format!("column {c} is not UTF-8: {e}"),
                                })?;
                                Value::Text(text.to_owned())
                            }
                        }
                        // No column of this schema holds a real or a blob: one is corrupt data,
                        // reported as sqlx would, not read as text.
                        other => {
                            return Err(RawError {
                                code: ffi::SQLITE_MISMATCH,
                                message: format!(
                                    "column {c} has SQLite type {other}, not text or integer"
                                ),
                            })
                        }
                    });
                }
                rows.push(row);
            }
            ffi::SQLITE_DONE => return Ok(()),
            rc => return Err(error(db, rc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, SqliteConnection};

    #[tokio::test]
    async fn a_script_binds_by_number_and_returns_every_statements_rows() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut h = conn.lock_handle().await.unwrap();
        // ?1 unused by the first statement, ?3 by the second; ?4 past the values is null.
        let sql = "INSERT INTO t (k, v) VALUES (?2, ?3) RETURNING k, v;
                   SELECT ?1, ?2 + 1, ?4, (SELECT COUNT(*) FROM t);";
        let mut s = unsafe { Script::prepare(h.as_raw_handle(), sql) }.unwrap();
        let rows = s.run(&["a".into(), Value::Int(7), "seven".into()]).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Value::Int(7), Value::Text("seven".into())],
                vec![
                    Value::Text("a".into()),
                    Value::Int(8),
                    Value::Null,
                    Value::Int(1)
                ],
            ]
        );
        // Run again with other values: the statements were reset.
        let rows = s.run(&["b".into(), Value::Int(9), Value::Null]).unwrap();
        assert_eq!(rows[0], vec![Value::Int(9), Value::Null]);
        assert_eq!(rows[1][3], Value::Int(2));
        // A failing statement reports SQLite's error and leaves the script usable.
        let err = s
            .run(&["c".into(), Value::Int(9), Value::Null])
            .unwrap_err();
        assert!(err.message.contains("UNIQUE"), "{err}");
        assert_eq!(
            s.run(&["d".into(), Value::Int(10)]).unwrap()[1][3],
            Value::Int(3)
        );
        drop(s);
        drop(h);
        // sqlx has its connection back.
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn a_script_that_does_not_parse_is_an_error() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut h = conn.lock_handle().await.unwrap();
        let e = unsafe { Script::prepare(h.as_raw_handle(), "SELECT 1; SELEC 2;") }
            .err()
            .expect("a syntax error");
        assert!(e.message.contains("syntax"), "{e}");
        // Parameters are numbered: a named one is refused when the script is prepared.
        let e = unsafe { Script::prepare(h.as_raw_handle(), "SELECT ?1; SELECT :name") }
            .err()
            .expect("a named parameter");
        assert!(e.message.contains("not of the form ?N"), "{e}");
    }

    #[tokio::test]
    async fn a_real_a_blob_or_text_that_is_not_utf8_is_an_error_not_text() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut h = conn.lock_handle().await.unwrap();
        for (sql, says) in [
            ("SELECT 1.5", "type 2"),
            ("SELECT x'00ff'", "type 4"),
            ("SELECT CAST(x'ff' AS TEXT)", "not UTF-8"),
        ] {
            let mut s = unsafe { Script::prepare(h.as_raw_handle(), sql) }.unwrap();
            let e = s.run(&[]).unwrap_err();
            assert!(e.message.contains(says), "{sql}: {e}");
        }
        let mut s = unsafe { Script::prepare(h.as_raw_handle(), "SELECT 'é', 2, NULL") }.unwrap();
        assert_eq!(
            s.run(&[]).unwrap(),
            vec![vec![Value::Text("é".into()), Value::Int(2), Value::Null]]
        );
    }
}
