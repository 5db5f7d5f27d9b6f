// Builds the small C helper for long double arithmetic (INCRBYFLOAT).
fn main() {
    println!("cargo:rerun-if-changed=csrc/long_double.c");
    cc::Build::new()
        .file("csrc/long_double.c")
        .opt_level(2)
        .compile("corekv_long_double");
}
