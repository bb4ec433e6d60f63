//! Fuzzes the `/proc/<pid>/stat` and `/proc/stat` parsers of the load generator's CPU
//! accounting (seccf-load). Accepted input must satisfy the parsers' bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_load::procstat::{
    parse_machine_stat, parse_pid_stat, MAX_MACHINE_STAT_LEN, MAX_PID_STAT_LEN,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = parse_pid_stat(&text) {
        assert!(text.len() <= MAX_PID_STAT_LEN);
        assert!(text.contains(')'));
        let _ = t.total();
    }
    if parse_machine_stat(&text).is_ok() {
        assert!(text.len() <= MAX_MACHINE_STAT_LEN);
        let first = text.lines().next().and_then(|l| l.split_ascii_whitespace().next());
        assert_eq!(first, Some("cpu"));
    }
});
