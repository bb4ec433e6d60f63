//! Parsers for the two Linux `/proc` files the CPU accounting reads, sans-IO.
//!
//! - `/proc/<pid>/stat`: one line; the process's user and system time summed over all
//!   its threads (fields 14 and 15, `utime` and `stime`, in clock ticks; proc(5)).
//! - `/proc/stat`: the first line, `cpu  user nice system idle iowait irq softirq
//!   steal …`, the whole machine's time in clock ticks.
//!
//! Field 2 of `/proc/<pid>/stat` is the command name in parentheses and may itself
//! contain spaces and `)`, so the fields are counted from the *last* `)`. Inputs are
//! bounded ([`MAX_PID_STAT_LEN`], [`MAX_MACHINE_STAT_LEN`]) and every failure is a
//! [`ProcStatError`]; nothing here panics on any input (see the randomized test and
//! the `load_procstat` fuzz target).

/// Clock ticks per second of the tick counts in `/proc` (`USER_HZ`). Linux fixes it
/// at 100 in its user-space ABI on every mainstream architecture, independent of the
/// kernel's internal HZ; `getconf CLK_TCK` reports the same number.
pub const USER_HZ: u64 = 100;

/// Longest `/proc/<pid>/stat` accepted. The line has 52 numeric fields and a command
/// name of at most 64 bytes, so real lines stay well below 1 KiB.
pub const MAX_PID_STAT_LEN: usize = 4096;

/// Longest `/proc/stat` prefix looked at: the first line is what counts, and the file
/// grows with the number of CPUs and interrupts, so callers read at most this much.
pub const MAX_MACHINE_STAT_LEN: usize = 64 * 1024;

/// Why a `/proc` text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcStatError {
    /// The text is longer than the bound for its kind.
    #[error("input longer than {0} bytes")]
    TooLong(usize),
    /// No `)` closing the command name.
    #[error("no command name in parentheses")]
    NoCommand,
    /// A required field is missing.
    #[error("field {0} is missing")]
    MissingField(usize),
    /// A field that must be a number is not one.
    #[error("field {0} is not a number")]
    NotANumber(usize),
    /// `/proc/stat` does not start with the aggregate `cpu ` line.
    #[error("no aggregate cpu line")]
    NoCpuLine,
}

/// CPU time of one process, in clock ticks ([`USER_HZ`] per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessTicks {
    /// User time of all threads.
    pub utime: u64,
    /// System time of all threads.
    pub stime: u64,
}

impl ProcessTicks {
    /// User plus system time.
    pub fn total(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// Parses `/proc/<pid>/stat`.
pub fn parse_pid_stat(text: &str) -> Result<ProcessTicks, ProcStatError> {
    if text.len() > MAX_PID_STAT_LEN {
        return Err(ProcStatError::TooLong(MAX_PID_STAT_LEN));
    }
    let close = text.rfind(')').ok_or(ProcStatError::NoCommand)?;
    // After the command name comes field 3 (state); utime and stime are fields 14, 15.
    let rest = text.get(close + 1..).ok_or(ProcStatError::NoCommand)?;
    let mut fields = rest.split_ascii_whitespace();
    let mut number_at = |field: usize, skip: usize| -> Result<u64, ProcStatError> {
        let text = fields.nth(skip).ok_or(ProcStatError::MissingField(field))?;
        text.parse::<u64>()
            .map_err(|_| ProcStatError::NotANumber(field))
    };
    // Field 3 is index 0 of `rest`, so field 14 is index 11; field 15 follows it.
    let utime = number_at(14, 11)?;
    let stime = number_at(15, 0)?;
    Ok(ProcessTicks { utime, stime })
}

/// The machine's CPU time from the aggregate line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq: time the CPUs spent working (the same sum
    /// `bench/run.sh` uses; idle, iowait and steal are not work done here).
    pub busy: u64,
}

/// Parses the first line of `/proc/stat` (at most [`MAX_MACHINE_STAT_LEN`] bytes of
/// the file are accepted; the rest of the file is ignored).
pub fn parse_machine_stat(text: &str) -> Result<MachineTicks, ProcStatError> {
    if text.len() > MAX_MACHINE_STAT_LEN {
        return Err(ProcStatError::TooLong(MAX_MACHINE_STAT_LEN));
    }
    let line = text.lines().next().ok_or(ProcStatError::NoCpuLine)?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next() != Some("cpu") {
        return Err(ProcStatError::NoCpuLine);
    }
    let mut values = [0u64; 7];
    for (i, slot) in values.iter_mut().enumerate() {
        // Field numbers as in proc(5): user is field 2 of the line.
        let field = i + 2;
        let t = fields.next().ok_or(ProcStatError::MissingField(field))?;
        *slot = t.parse().map_err(|_| ProcStatError::NotANumber(field))?;
    }
    let [user, nice, system, _idle, _iowait, irq, softirq] = values;
    let busy = [user, nice, system, irq, softirq]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b));
    Ok(MachineTicks { busy })
}

/// Seconds in `ticks` clock ticks.
pub fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / USER_HZ as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line of this machine's `/proc/<pid>/stat` (a `sleep` process), with a
    /// command name edited to contain a space and a parenthesis.
    const PID_STAT: &str = "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 97 0 0 0 \
        1234 56 0 0 20 0 1 0 305811 5619712 218 18446744073709551615 1 1 0 0 0 0 0 0 0 \
        0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    const MACHINE_STAT: &str = "cpu  10 20 30 4000 50 6 7 8 0 0\n\
        cpu0 5 10 15 2000 25 3 3 4 0 0\nintr 1 2 3\n";

    #[test]
    fn pid_stat_fields_are_counted_after_the_last_parenthesis() {
        let t = parse_pid_stat(PID_STAT).expect("valid line");
        assert_eq!(
            t,
            ProcessTicks {
                utime: 1234,
                stime: 56
            }
        );
        assert_eq!(t.total(), 1290);
    }

    #[test]
    fn machine_busy_sums_user_nice_system_irq_softirq() {
        let m = parse_machine_stat(MACHINE_STAT).expect("valid file");
        assert_eq!(m.busy, 10 + 20 + 30 + 6 + 7);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(
            parse_pid_stat("4242 sleep S 1"),
            Err(ProcStatError::NoCommand)
        );
        assert_eq!(
            parse_pid_stat("1 (x) S 1 2 3"),
            Err(ProcStatError::MissingField(14))
        );
        let bad_utime = PID_STAT.replace(" 1234 ", " 12x4 ");
        assert_eq!(
            parse_pid_stat(&bad_utime),
            Err(ProcStatError::NotANumber(14))
        );
        assert_eq!(
            parse_pid_stat(&"9".repeat(MAX_PID_STAT_LEN + 1)),
            Err(ProcStatError::TooLong(MAX_PID_STAT_LEN))
        );
        assert_eq!(
            parse_machine_stat("cpu0 1 2 3 4 5 6 7\n"),
            Err(ProcStatError::NoCpuLine)
        );
        assert_eq!(
            parse_machine_stat("cpu 1 2 3\n"),
            Err(ProcStatError::MissingField(5))
        );
        assert_eq!(parse_machine_stat(""), Err(ProcStatError::NoCpuLine));
    }

    #[test]
    fn reads_this_process() {
        // The live files must parse: this is what the load generator relies on.
        let own = std::fs::read_to_string("/proc/self/stat").expect("procfs mounted");
        parse_pid_stat(&own).expect("own stat line parses");
        let machine = std::fs::read_to_string("/proc/stat").expect("procfs mounted");
        let cut = machine
            .get(..MAX_MACHINE_STAT_LEN.min(machine.len()))
            .unwrap_or("");
        parse_machine_stat(cut).expect("/proc/stat parses");
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random bytes and mutations of the valid inputs: never a panic.
    #[test]
    fn parsers_never_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let alphabet = b"cpu ()0123456789 \n\t-x\xff";
        let seeds = [PID_STAT.as_bytes(), MACHINE_STAT.as_bytes()];
        for round in 0..4000 {
            let mut input: Vec<u8> = if round % 2 == 0 {
                let seed = seeds[(rng.next() % 2) as usize];
                let mut v = seed.to_vec();
                for _ in 0..(1 + rng.next() % 6) {
                    let pos = (rng.next() as usize) % (v.len() + 1);
                    match rng.next() % 3 {
                        0 if pos < v.len() => {
                            v.remove(pos);
                        }
                        1 if pos < v.len() => {
                            v[pos] = alphabet[(rng.next() as usize) % alphabet.len()];
                        }
                        _ => v.insert(pos, alphabet[(rng.next() as usize) % alphabet.len()]),
                    }
                }
                v
            } else {
                let len = (rng.next() % 300) as usize;
                (0..len)
                    .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
                    .collect()
            };
            if round % 500 == 0 {
                input.resize(MAX_PID_STAT_LEN + 10, b' ');
            }
            let text = String::from_utf8_lossy(&input);
            let _ = parse_pid_stat(&text);
            let _ = parse_machine_stat(&text);
        }
    }
}
