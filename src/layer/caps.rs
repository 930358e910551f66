//! Linux file capabilities on the binary, as ko sets them (`linux_capabilities` in a build
//! of `.ko.yaml`): the kernel's `security.capability` extended attribute, carried by the
//! binary's tar entry as the PAX record `SCHILY.xattr.security.capability`, so a container
//! running as a non-root user keeps the capabilities it is granted (`--cap-add`).
//!
//! Terms are ko's: a capability name alone is permitted (`net_bind_service`), or a
//! `cap_from_text(3)` clause `NAMES[ACTIONS]…` (`bpf,perfmon=ep`, `all=p`, `=ep` for every
//! capability, `chown+p-e`). A name is matched without case and with or without `CAP_`; a
//! number 0–63 is a capability by its bit (for ones newer than this list); `all` is every
//! capability listed here. The attribute is written only when some capability ends up
//! permitted or inheritable; the effective flag is set when any ends up effective.

use std::fmt;

/// The PAX record that holds the attribute (Go's archive/tar and GNU tar read it back).
pub const PAX_KEY: &str = "SCHILY.xattr.security.capability";

/// Capability names by bit number, as in linux/capability.h.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A bad capability term: which term, what was wrong, and what is accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct CapsError {
    pub term: String,
    pub problem: String,
}

impl fmt::Display for CapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "linux capability {:?}: {}; expected a capability name (any case, with or \
             without CAP_): {}; a number 0-63; ALL; or a cap_from_text(3) clause such as \
             \"net_bind_service=ep\" (actions + - =, sets p i e)",
            self.term,
            self.problem,
            NAMES.join(", ")
        )
    }
}

impl std::error::Error for CapsError {}

/// Capabilities for the binary: bit masks by capability number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    /// Raise the permitted ones as effective at exec (the attribute's one flag).
    pub effective: bool,
}

fn mask_of(term: &str, name: &str) -> Result<u64, CapsError> {
    if !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && let Some(bit) = name.parse::<u64>().ok().filter(|b| *b <= 63)
    {
        return Ok(1 << bit);
    }
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok((0..NAMES.len()).fold(0, |m, i| m | 1 << i));
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    match NAMES.iter().position(|n| *n == bare) {
        Some(i) => Ok(1 << i),
        None => Err(CapsError {
            term: term.to_string(),
            problem: format!("unknown capability {name:?}"),
        }),
    }
}

impl FileCaps {
    /// The capabilities the terms give, in order; None when none is permitted or
    /// inheritable (no attribute is written then).
    pub fn parse(terms: &[impl AsRef<str>]) -> Result<Option<FileCaps>, CapsError> {
        let (mut permitted, mut inheritable, mut effective) = (0u64, 0u64, 0u64);
        for term in terms.iter().map(AsRef::as_ref) {
            let Some(at) = term.find(['+', '-', '=']) else {
                permitted |= mask_of(term, term)?;
                continue;
            };
            let (mut names, actions) = term.split_at(at);
            if names.is_empty() && actions.starts_with('=') {
                names = "all";
            }
            let mut mask = 0;
            for name in names.split(',') {
                mask |= mask_of(term, name)?;
            }
            let mut keep = u64::MAX;
            for c in actions.chars() {
                match c {
                    '+' => keep = u64::MAX,
                    '-' => keep = !mask,
                    '=' => {
                        keep = u64::MAX;
                        permitted &= !mask;
                        inheritable &= !mask;
                        effective &= !mask;
                    }
                    'p' => permitted = (permitted | mask) & keep,
                    'i' => inheritable = (inheritable | mask) & keep,
                    'e' => effective = (effective | mask) & keep,
                    other => {
                        return Err(CapsError {
                            term: term.to_string(),
                            problem: format!("unknown action or set {other:?}"),
                        });
                    }
                }
            }
        }
        Ok((permitted != 0 || inheritable != 0).then_some(FileCaps {
            permitted,
            inheritable,
            effective: effective != 0,
        }))
    }

    /// The `security.capability` value: the kernel's `vfs_cap_data`, revision 2 (all
    /// little-endian u32): magic and flags, then permitted and inheritable, low 32 bits
    /// first and then high.
    pub fn xattr(&self) -> [u8; 20] {
        const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
        let words = [
            VFS_CAP_REVISION_2 | u32::from(self.effective),
            self.permitted as u32,
            self.inheritable as u32,
            (self.permitted >> 32) as u32,
            (self.inheritable >> 32) as u32,
        ];
        let mut out = [0u8; 20];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(terms: &[&str]) -> Option<FileCaps> {
        FileCaps::parse(terms).unwrap()
    }

    const NET_BIND_SERVICE: u64 = 1 << 10;
    const BPF: u64 = 1 << 39;
    const PERFMON: u64 = 1 << 38;
    const CHOWN: u64 = 1;

    #[test]
    fn names_alone_are_permitted_in_any_spelling() {
        let want = Some(FileCaps {
            permitted: NET_BIND_SERVICE | BPF,
            inheritable: 0,
            effective: false,
        });
        assert_eq!(caps(&["net_bind_service", "bpf"]), want);
        assert_eq!(caps(&["CAP_NET_BIND_SERVICE", "Cap_Bpf"]), want);
        assert_eq!(caps(&["10", "39"]), want);
        assert_eq!(caps(&["63"]).unwrap().permitted, 1 << 63);
        assert_eq!(caps(&["all"]).unwrap().permitted, (1 << 41) - 1);
        assert_eq!(caps(&[] as &[&str]), None);
    }

    #[test]
    fn cap_from_text_clauses() {
        let ep = caps(&["bpf,perfmon=ep"]).unwrap();
        assert_eq!(
            (ep.permitted, ep.inheritable, ep.effective),
            (BPF | PERFMON, 0, true)
        );
        // "=ep" alone: every capability.
        assert_eq!(caps(&["=ep"]).unwrap().permitted, (1 << 41) - 1);
        // '-' drops what an earlier term gave; '=' resets the named ones first.
        let t = caps(&["chown,bpf=pie", "bpf-ie"]).unwrap();
        assert_eq!(
            (t.permitted, t.inheritable, t.effective),
            (CHOWN | BPF, CHOWN, true)
        );
        let t = caps(&["chown=pi", "chown=p"]).unwrap();
        assert_eq!((t.permitted, t.inheritable), (CHOWN, 0));
        assert_eq!(caps(&["chown=p", "chown-p"]), None);
        // Effective alone permits nothing: no attribute.
        assert_eq!(caps(&["chown=e"]), None);
        let t = caps(&["chown+p-e"]).unwrap();
        assert_eq!((t.permitted, t.effective), (CHOWN, false));
    }

    #[test]
    fn bad_terms_name_the_term_and_list_the_names() {
        let e = FileCaps::parse(&["net_bind"]).unwrap_err();
        assert_eq!(e.problem, "unknown capability \"net_bind\"");
        let text = e.to_string();
        assert!(text.contains("\"net_bind\"") && text.contains("NET_BIND_SERVICE, NET_BROADCAST"));
        let e = FileCaps::parse(&["chown=px"]).unwrap_err();
        assert_eq!(e.problem, "unknown action or set 'x'");
        assert!(FileCaps::parse(&["64"]).is_err());
        assert_eq!(caps(&["007"]).unwrap().permitted, 1 << 7);
        assert!(
            FileCaps::parse(&["+p"]).is_err(),
            "an empty name before '+'"
        );
        assert!(FileCaps::parse(&["chown,=p"]).is_err());
    }

    #[test]
    fn the_attribute_is_vfs_cap_data_revision_2() {
        let c = FileCaps {
            permitted: NET_BIND_SERVICE | BPF,
            inheritable: CHOWN,
            effective: true,
        };
        assert_eq!(
            c.xattr(),
            [
                0x01, 0, 0, 0x02, // revision 2, effective
                0, 0x04, 0, 0, // permitted, low: bit 10
                0x01, 0, 0, 0, // inheritable, low: bit 0
                0x80, 0, 0, 0, // permitted, high: bit 39
                0, 0, 0, 0, // inheritable, high
            ]
        );
    }
}
