//! The command's output on stdout: digests and references, a line each.

use std::fmt::Display;
use std::io::Write;

/// Prints a line on stdout. A closed pipe (`rko … | head -1`) ends the output quietly
/// instead of panicking as `println!` does.
pub fn line(text: impl Display) {
    bytes(format!("{text}\n").as_bytes());
}

/// Writes `data` to stdout as it is, ending quietly on a closed pipe as [`line`] does.
pub fn bytes(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(data).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("rko: error: writing to stdout: {e}");
        std::process::exit(1);
    }
}
