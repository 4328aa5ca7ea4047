//! The `kcl` command-line tool: `kcl --help` lists the subcommands. The logic lives in the
//! `kcl` library of this package.

use clap::Parser;
use kcl::{self as cli, args::Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let command_line = Cli::parse();
    cli::init_tracing(&command_line);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kcl: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(command_line)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kcl: {error:#}");
            ExitCode::FAILURE
        }
    }
}
