//! The C ABI (`libcorekv_shm.so`, `shm/capi/include/corekv_shm.h`): the C example is compiled
//! with `cc` against the library and run against a live corekv; so is the Python ctypes one.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use redis::Commands;
use support::Server;

/// The directory cargo put `libcorekv_shm.so` in (built as this test's dev-dependency).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let profile = deps.parent().unwrap().to_path_buf();
    [deps, profile]
        .into_iter()
        .find(|d| d.join("libcorekv_shm.so").exists())
        .expect("libcorekv_shm.so is built next to the test (dev-dependency corekv-shm-capi)")
}

fn capi_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shm/capi")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn c_program_compiled_against_the_library() {
    let (server, path) = Server::corekv_with_shm(2, "64kb", &[]);
    let lib = library_dir();
    let exe = path.with_file_name("example");
    run(Command::new("cc")
        .arg(capi_dir().join("examples/example.c"))
        .arg("-I")
        .arg(capi_dir().join("include"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lcorekv_shm", "-Wall", "-Werror", "-o"])
        .arg(&exe));
    let stdout = run(Command::new(&exe).arg(&path));
    assert!(stdout.contains("counter -> 1000"), "{stdout}");
    assert!(stdout.ends_with("ALL OK\n"), "{stdout}");
    // What the C program wrote is what TCP clients see.
    let mut tcp = server.client();
    let v: Vec<u8> = tcp.get("capi:key").unwrap();
    assert_eq!(v, b"a\0b");
    let list: Vec<String> = tcp.lrange("capi:list", 0, -1).unwrap();
    assert_eq!(list, ["x", "y", "z"]);
    // A missing server is an error message, not a crash.
    let stderr = Command::new(&exe)
        .arg(path.with_file_name("nothing.sock"))
        .output()
        .unwrap();
    assert_eq!(stderr.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stderr.stderr).contains("nothing.sock"));
}

#[test]
fn python_ctypes_example() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not installed: skipping the ctypes example");
        return;
    }
    let (server, path) = Server::corekv_with_shm(1, "64kb", &[]);
    let stdout = run(Command::new("python3")
        .arg(capi_dir().join("examples/example.py"))
        .arg(&path)
        .arg(library_dir().join("libcorekv_shm.so")));
    assert!(stdout.ends_with("ALL OK\n"), "{stdout}");
    let v: Vec<u8> = server.client().get("py:key").unwrap();
    assert_eq!(v, b"v\0w");
}
