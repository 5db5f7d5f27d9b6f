//! Function libraries (Redis 7 FUNCTION / FCALL): metadata, registration and the shared
//! library list.

use std::sync::Arc;

use bytes::Bytes;
use corekv_net::Reply;
use mlua::{Function, MultiValue, Value};

use crate::flags::Flags;
use crate::registry::{self, FunctionMeta, Library};

/// Functions a library's code registered while it ran.
#[derive(Default)]
pub(crate) struct Registration {
    pub functions: Vec<(FunctionMeta, Function)>,
}

/// A library compiled in one engine.
pub struct LoadedLibrary {
    pub name: String,
    pub(crate) functions: Vec<(FunctionMeta, Function)>,
}

/// Parses the `#!lua name=<library>` line. Returns the name and the length of the line (the
/// code compiled starts there, keeping the line feed so line numbers stay the user's).
pub(crate) fn parse_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts
        .next()
        .ok_or_else(|| "Invalid library metadata".to_string())?;
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(
                        "Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(part[5..].to_string());
            }
            _ => return Err(format!("Invalid metadata value given: {part}")),
        }
    }
    let name = name.ok_or_else(|| "Library name was not given".to_string())?;
    if !valid_name(&name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    let engine = &engine[2..];
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, end))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Registration {
    /// `redis.register_function(name, callback)` or
    /// `redis.register_function{function_name=..., callback=..., flags={...}, description=...}`.
    pub(crate) fn register(&mut self, args: MultiValue) -> Result<(), String> {
        let (meta, callback) = match args.len() {
            1 => named_args(&args[0])?,
            2 => {
                let name = string_arg(&args[0])
                    .ok_or("first argument to redis.register_function must be a string")?;
                let Value::Function(f) = &args[1] else {
                    return Err(
                        "second argument to redis.register_function must be a function".into(),
                    );
                };
                let meta = FunctionMeta {
                    name,
                    description: None,
                    flags: Flags::default(),
                };
                (meta, f.clone())
            }
            _ => return Err("wrong number of arguments to redis.register_function".into()),
        };
        if !valid_name(&meta.name) {
            // Redis 7.0 says "Library" here too.
            return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
        }
        if self.functions.iter().any(|(m, _)| m.name == meta.name) {
            return Err("Function already exists in the library".into());
        }
        self.functions.push((meta, callback));
        Ok(())
    }
}

fn string_arg(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Number(_) | Value::Integer(_) => Some(crate::engine::lua_number_text(v)),
        _ => None,
    }
}

fn named_args(arg: &Value) -> Result<(FunctionMeta, Function), String> {
    let Value::Table(t) = arg else {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
    };
    let (mut name, mut description, mut callback, mut flags) = (None, None, None, Flags::default());
    for pair in t.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        let Value::String(key) = key else {
            return Err(
                "named argument key given to redis.register_function is not a string".into(),
            );
        };
        match &*key.to_string_lossy() {
            "function_name" => {
                name = Some(string_arg(&value).ok_or(
                    "function_name argument given to redis.register_function must be a string",
                )?)
            }
            "description" => {
                description = Some(string_arg(&value).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?)
            }
            "callback" => match value {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function"
                            .into(),
                    )
                }
            },
            "flags" => flags = read_flags(&value).ok_or("unknown flag given")?,
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let callback = callback.ok_or("redis.register_function must get a callback argument")?;
    Ok((
        FunctionMeta {
            name,
            description,
            flags,
        },
        callback,
    ))
}

fn read_flags(v: &Value) -> Option<Flags> {
    let Value::Table(t) = v else {
        return None;
    };
    let mut flags = Flags::default();
    for i in 1.. {
        match t.raw_get::<Value>(i).ok()? {
            Value::Nil => break,
            value => {
                let name = string_arg(&value)?.to_ascii_lowercase();
                flags.insert(Flags::by_name(&name)?);
            }
        }
    }
    Some(flags)
}

/// Adds a validated library to the shared list (FUNCTION LOAD). Returns its name.
pub(crate) fn publish(loaded: LoadedLibrary, code: Bytes, replace: bool) -> Result<String, String> {
    let name = loaded.name.clone();
    registry::update_libraries(|libs| {
        insert(libs, loaded, code, replace)?;
        Ok(name)
    })
}

fn insert(
    libs: &mut std::collections::BTreeMap<String, Arc<Library>>,
    loaded: LoadedLibrary,
    code: Bytes,
    replace: bool,
) -> Result<(), String> {
    if libs.contains_key(&loaded.name) {
        if !replace {
            return Err(format!("Library '{}' already exists", loaded.name));
        }
        libs.remove(&loaded.name);
    }
    for (meta, _) in &loaded.functions {
        if libs
            .values()
            .any(|l| l.functions.iter().any(|f| f.name == meta.name))
        {
            return Err(format!("Function {} already exists", meta.name));
        }
    }
    let library = Library {
        name: loaded.name.clone(),
        code,
        functions: loaded.functions.into_iter().map(|(m, _)| m).collect(),
    };
    libs.insert(loaded.name, Arc::new(library));
    Ok(())
}

/// What FUNCTION RESTORE does with libraries that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// Installs restored libraries (validated by an engine) all at once, or none.
pub fn restore(
    libraries: Vec<(LoadedLibrary, Bytes)>,
    policy: RestorePolicy,
) -> Result<(), String> {
    registry::update_libraries(|libs| {
        if policy == RestorePolicy::Flush {
            libs.clear();
        }
        for (loaded, code) in libraries {
            insert(libs, loaded, code, policy == RestorePolicy::Replace)?;
        }
        Ok(())
    })
}

pub fn delete(name: &[u8]) -> Result<(), String> {
    let name = String::from_utf8_lossy(name).into_owned();
    registry::update_libraries(|libs| {
        libs.remove(&name)
            .map(|_| ())
            .ok_or_else(|| "Library not found".to_string())
    })
}

pub fn flush() {
    let _ = registry::update_libraries(|libs| {
        libs.clear();
        Ok(())
    });
}

/// One library as FUNCTION LIST shows it.
pub fn list_entry(library: &Library, with_code: bool) -> Reply {
    let functions = library
        .functions
        .iter()
        .map(|f| {
            Reply::Map(vec![
                (Reply::bulk("name"), Reply::bulk(&f.name)),
                (
                    Reply::bulk("description"),
                    f.description.as_ref().map_or(Reply::Nil, Reply::bulk),
                ),
                (
                    Reply::bulk("flags"),
                    Reply::Set(f.flags.names().map(Reply::status).collect()),
                ),
            ])
        })
        .collect();
    let mut fields = vec![
        (Reply::bulk("library_name"), Reply::bulk(&library.name)),
        (Reply::bulk("engine"), Reply::bulk("LUA")),
        (Reply::bulk("functions"), Reply::Array(functions)),
    ];
    if with_code {
        fields.push((
            Reply::bulk("library_code"),
            Reply::Bulk(library.code.clone()),
        ));
    }
    Reply::Map(fields)
}
