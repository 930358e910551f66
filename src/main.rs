//! `rko`: expand `@file` arguments, parse the command line, run the action, print the error
//! chain and exit non-zero on failure.

use clap::Parser;

fn main() {
    let args = match rules_ko::cli::argfile::expand(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rko: error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = rules_ko::cli::Cli::parse_from(args);
    if let Err(e) = rules_ko::cli::run(cli) {
        eprintln!("rko: error: {e:#}");
        std::process::exit(1);
    }
}
