//! corekv's scripting: a Lua 5.1 engine with Redis 7.0's scripting API (EVAL scripts and
//! FUNCTION libraries), the script cache and libraries every executor shares, and the BUSY
//! state other executors check while a script runs long.
//!
//! The engine knows nothing about the keyspace: the shard side implements [`Host`] to run the
//! commands a script calls. Each executor thread has its own [`Engine`] (see [`with_engine`]);
//! what is shared lives in [`registry`] and [`busy`].

pub mod busy;
mod convert;
mod engine;
pub mod flags;
pub mod functions;
mod libs;
pub mod registry;

use std::cell::RefCell;

pub use engine::{Engine, Host, RunLimits, ScriptRef};
pub use flags::Flags;

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("Lua: {0}")]
    Lua(#[from] mlua::Error),
    #[error("a script is already running on this thread")]
    Reentered,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's engine, creating it on first use.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Result<R, ScriptError> {
    ENGINE.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| ScriptError::Reentered)?;
        if slot.is_none() {
            *slot = Some(Engine::new()?);
        }
        match slot.as_mut() {
            Some(engine) => Ok(f(engine)),
            None => Err(ScriptError::Reentered),
        }
    })
}
