//! DNS host-name syntax shared by NAF_Id FQDNs, B-TID domains and IMPI realms.

/// Longest host name in presentation form (RFC 1035 limit of 255 octets on the wire).
pub(crate) const MAX_HOST_LEN: usize = 253;
/// Longest DNS label.
pub(crate) const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    /// Empty or longer than [`MAX_HOST_LEN`].
    Length,
    /// A byte outside ASCII.
    NonAscii,
    /// An empty label (leading, trailing or double dot) or one longer than 63.
    LabelLength,
    /// A character outside the allowed set, or a label starting or ending with '-'.
    BadLabel,
}

/// Checks LDH syntax: dot-separated labels of letters, digits and '-', 1..=63 octets, not
/// starting or ending with '-'. Upper-case letters are allowed only if `allow_upper`.
/// Single-label names (`localhost`) and all-digit labels (IPv4 literals) pass.
pub(crate) fn check_host(s: &str, allow_upper: bool) -> Result<(), HostError> {
    if s.is_empty() || s.len() > MAX_HOST_LEN {
        return Err(HostError::Length);
    }
    if !s.is_ascii() {
        return Err(HostError::NonAscii);
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(HostError::LabelLength);
        }
        let ok_char = |c: u8| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'-'
                || (allow_upper && c.is_ascii_uppercase())
        };
        if !label.bytes().all(ok_char) || label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::BadLabel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        assert_eq!(check_host("naf.example.com", false), Ok(()));
        assert_eq!(check_host("localhost", false), Ok(()));
        assert_eq!(check_host("127.0.0.1", false), Ok(()));
        assert_eq!(check_host("a-b.c", false), Ok(()));
        assert_eq!(check_host("Naf.example", false), Err(HostError::BadLabel));
        assert_eq!(check_host("Naf.example", true), Ok(()));
        assert_eq!(check_host("", false), Err(HostError::Length));
        assert_eq!(check_host("a..b", false), Err(HostError::LabelLength));
        assert_eq!(check_host("a.", false), Err(HostError::LabelLength));
        assert_eq!(check_host("-a.b", false), Err(HostError::BadLabel));
        assert_eq!(check_host("a-.b", false), Err(HostError::BadLabel));
        assert_eq!(check_host("a_b", false), Err(HostError::BadLabel));
        assert_eq!(check_host("a:80", false), Err(HostError::BadLabel));
        assert_eq!(check_host("bücher.de", false), Err(HostError::NonAscii));
        let label63 = "a".repeat(63);
        assert_eq!(check_host(&label63, false), Ok(()));
        assert_eq!(
            check_host(&"a".repeat(64), false),
            Err(HostError::LabelLength)
        );
        let long = [label63.as_str(); 4].join("."); // 255 octets
        assert_eq!(check_host(&long, false), Err(HostError::Length));
        assert_eq!(check_host(&long[2..], false), Ok(())); // 253 octets
    }
}
