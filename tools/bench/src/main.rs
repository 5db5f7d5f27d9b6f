use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match corekv_bench::main_with_args(std::env::args_os(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(corekv_bench::cli::CliError::Clap(e)) => {
            // Help and version go to stdout with status 0, usage errors to stderr with 2.
            let _ = e.print();
            ExitCode::from(e.exit_code() as u8)
        }
        Err(corekv_bench::cli::CliError::Bench(e)) => {
            eprintln!("corekv-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
