//! Go build info, read from an executable's own bytes with no Go toolchain: the Go version
//! and the module list (`path`, `mod`, `dep`, `=>`, `build` lines) that `go version -m`
//! prints. [`modinfo`] parses the text; [`exe`] finds it in ELF, Mach-O and PE files;
//! [`text`] prints it as `go version -m` does.

pub mod exe;
pub mod modinfo;
pub mod text;

pub use modinfo::{BuildInfo, ModinfoError, Module};
