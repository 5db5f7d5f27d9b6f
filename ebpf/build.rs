//! Compiles the BPF programs in `bpf/` with clang (`clang -O2 -g -target bpf`): the front
//! cache, and the kernel-behaviour probe its tests load. clang and libbpf's headers are
//! required: scripts/ensure-deps.sh installs them (`clang libbpf-dev`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=bpf/front_cache.h");
    // <linux/types.h> includes <asm/types.h>, which Debian keeps under the multiarch directory.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    for name in ["front_cache", "length_probe"] {
        let source = format!("bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={source}");
        let status = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{multiarch}"))
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(out.join(format!("{name}.bpf.o")))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("clang failed ({s}) compiling ebpf/{source}"),
            Err(e) => panic!(
                "corekv-ebpf needs clang to compile its BPF programs ({e}); \
                 install it with `apt-get install clang libbpf-dev` (scripts/ensure-deps.sh does)"
            ),
        }
    }
}
