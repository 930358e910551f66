//! `rko`, the action binary of rules_ko: everything is in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    rules_ko::main()
}
