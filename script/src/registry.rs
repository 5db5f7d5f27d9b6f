//! What every executor shares: the EVAL script cache and the function libraries.
//!
//! Both are read-mostly: SCRIPT LOAD / FUNCTION LOAD write under a lock, executors read on
//! a cache miss only. Each executor compiles what it runs into its own Lua state once; a
//! generation number tells it when its compiled copies are stale (after a flush or a change
//! of libraries).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;

use crate::flags::Flags;

static SCRIPTS: LazyLock<RwLock<HashMap<String, Bytes>>> = LazyLock::new(Default::default);
static SCRIPTS_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The SHA1 of a script body, lower-case hex, as EVALSHA names it.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

pub fn script_store(sha: &str, body: Bytes) {
    if let Ok(mut map) = SCRIPTS.write() {
        map.entry(sha.to_string()).or_insert(body);
    }
}

/// The body of a cached script; `sha` is matched case-insensitively like Redis.
pub fn script_get(sha: &[u8]) -> Option<Bytes> {
    let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
    SCRIPTS.read().ok()?.get(&sha).cloned()
}

pub fn script_exists(sha: &[u8]) -> bool {
    script_get(sha).is_some()
}

pub fn script_flush() {
    if let Ok(mut map) = SCRIPTS.write() {
        map.clear();
    }
    SCRIPTS_GENERATION.fetch_add(1, Ordering::AcqRel);
}

pub fn scripts_generation() -> u64 {
    SCRIPTS_GENERATION.load(Ordering::Acquire)
}

pub fn scripts_count() -> usize {
    SCRIPTS.read().map(|m| m.len()).unwrap_or(0)
}

/// One registered function's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<String>,
    pub flags: Flags,
}

/// A loaded library: its code and the functions it registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FunctionMeta>,
}

/// Every library, by name (FUNCTION LIST lists them in this order).
#[derive(Debug, Clone, Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Arc<Library>>,
    pub generation: u64,
}

impl Libraries {
    /// The library holding function `name`, and that function's metadata.
    pub fn function(&self, name: &str) -> Option<(&Arc<Library>, &FunctionMeta)> {
        self.libs
            .values()
            .find_map(|l| l.functions.iter().find(|f| f.name == name).map(|f| (l, f)))
    }

    pub fn function_count(&self) -> usize {
        self.libs.values().map(|l| l.functions.len()).sum()
    }
}

static LIBRARIES: LazyLock<RwLock<Libraries>> = LazyLock::new(Default::default);
static LIBRARIES_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the libraries.
pub fn libraries() -> Libraries {
    LIBRARIES.read().map(|l| l.clone()).unwrap_or_default()
}

/// The generation of the libraries (changes with every load, delete, flush or restore).
pub fn libraries_generation() -> u64 {
    LIBRARIES_GENERATION.load(Ordering::Acquire)
}

/// Changes the libraries under the lock; `change` returns an error to leave them as they
/// were.
pub fn update_libraries<T>(
    change: impl FnOnce(&mut BTreeMap<String, Arc<Library>>) -> Result<T, String>,
) -> Result<T, String> {
    let mut guard = LIBRARIES
        .write()
        .map_err(|_| "ERR function registry unavailable".to_string())?;
    let mut libs = guard.libs.clone();
    let out = change(&mut libs)?;
    guard.libs = libs;
    guard.generation = LIBRARIES_GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    Ok(out)
}
