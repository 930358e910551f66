//! `rko`: parse the command line, run the action, print the error chain and exit non-zero
//! on failure.

use clap::Parser;

fn main() {
    let cli = rules_ko::cli::Cli::parse();
    if let Err(e) = rules_ko::cli::run(cli) {
        eprintln!("rko: error: {e:#}");
        std::process::exit(1);
    }
}
