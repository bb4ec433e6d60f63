//! AKA sequence numbers: SQN = SEQ (43 bits) || IND (5 bits), TS 33.102 Annex C.
//!
//! The home environment (the KMC) keeps one counter per subscriber and issues
//! `counter + 1`; the USIM keeps, for each of the 32 IND values, the highest SEQ it
//! accepted with that IND. Vectors issued in one order may therefore be used in another
//! order as long as they carry different INDs, while a replayed vector is refused.

/// The largest 48-bit sequence number.
pub const SQN_MAX: u64 = (1 << 48) - 1;
/// Number of low bits of SQN that form the index IND.
pub const IND_BITS: u32 = 5;
/// Number of IND values (array entries in the USIM).
pub const IND_COUNT: usize = 1 << IND_BITS;
/// The largest SEQ value (43 bits).
pub const SEQ_MAX: u64 = SQN_MAX >> IND_BITS;

const IND_MASK: u64 = (1 << IND_BITS) - 1;

/// Big-endian 48-bit encoding; bits above 48 are dropped.
pub fn to_bytes(sqn: u64) -> [u8; 6] {
    let b = (sqn & SQN_MAX).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Decodes a big-endian 48-bit SQN.
pub fn from_bytes(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// SEQ, the upper 43 bits of `sqn`.
pub fn seq(sqn: u64) -> u64 {
    (sqn & SQN_MAX) >> IND_BITS
}

/// IND, the lower 5 bits of `sqn`.
pub fn ind(sqn: u64) -> usize {
    // At most 31, so the cast cannot truncate.
    (sqn & IND_MASK) as usize
}

/// SQN from SEQ and IND (both masked to their widths).
pub fn from_parts(seq: u64, ind: usize) -> u64 {
    ((seq & SEQ_MAX) << IND_BITS) | (ind as u64 & IND_MASK)
}

/// The HE-side counter after a verified resync with SQN_MS, such that the next
/// `counter + 1` has SEQ = SEQ(SQN_MS) + 1 and IND = 0 (TS 33.102 C.3.4: the HE moves
/// past everything the USIM has seen).
///
/// If SEQ(SQN_MS) is already [`SEQ_MAX`] the counter saturates at [`SQN_MAX`]; the HE
/// then has no fresh SQN left for this K and must refuse to issue vectors (see
/// [`next_sqn`]).
pub fn he_counter_after_resync(sqn_ms: u64) -> u64 {
    let next_seq = seq(sqn_ms) + 1;
    if next_seq > SEQ_MAX {
        return SQN_MAX;
    }
    (next_seq << IND_BITS) - 1
}

/// The SQN the HE issues after `counter`, or `None` when the 48-bit space is exhausted
/// (wrapping would make old vectors fresh again).
pub fn next_sqn(counter: u64) -> Option<u64> {
    let n = (counter & SQN_MAX).checked_add(1)?;
    (n <= SQN_MAX).then_some(n)
}

/// Why the USIM refused an SQN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SqnError {
    /// SEQ is not above the SEQ last accepted with the same IND: a replay or a stale vector.
    #[error("SQN is not fresh (replayed or older than an accepted vector with the same IND)")]
    NotFresh,
    /// SEQ is more than delta above the highest accepted SEQ (TS 33.102 C.2.2 wrap-around
    /// protection).
    #[error("SQN is too far ahead of the highest accepted SQN")]
    TooFarAhead,
}

/// USIM-side freshness check with an IND-indexed array of SEQ_MS (TS 33.102 Annex C.2):
/// accept iff SEQ(sqn) > seq_ms\[IND(sqn)\] and SEQ(sqn) - max(seq_ms) <= delta.
///
/// The optional age limit L of C.2.2 is not implemented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqnWindow {
    seq_ms: [u64; IND_COUNT],
    delta: u64,
}

impl Default for SqnWindow {
    fn default() -> Self {
        Self::new(Self::DEFAULT_DELTA)
    }
}

impl SqnWindow {
    /// Default delta: 2^28, the value TS 33.102 C.3.2 suggests.
    pub const DEFAULT_DELTA: u64 = 1 << 28;

    /// A fresh USIM (nothing accepted yet) with the given delta.
    ///
    /// A delta of [`SEQ_MAX`] or more disables the too-far-ahead check; test cards whose
    /// first vector has a large SQN (such as the TS 35.208 test sets) need that.
    pub fn new(delta: u64) -> Self {
        SqnWindow {
            seq_ms: [0; IND_COUNT],
            delta,
        }
    }

    /// Build from a persisted array (32 entries), e.g. a USIM state file. Values are
    /// masked to 43 bits.
    pub fn from_array(seq_ms: [u64; 32], delta: u64) -> Self {
        SqnWindow {
            seq_ms: seq_ms.map(|s| s & SEQ_MAX),
            delta,
        }
    }

    /// The SEQ_MS array, for persisting.
    pub fn as_array(&self) -> [u64; 32] {
        self.seq_ms
    }

    /// The configured delta.
    pub fn delta(&self) -> u64 {
        self.delta
    }

    /// Checks freshness without recording anything.
    pub fn check(&self, sqn: u64) -> Result<(), SqnError> {
        let s = seq(sqn);
        let slot = self.seq_ms.get(ind(sqn)).copied().unwrap_or(u64::MAX);
        if s <= slot {
            return Err(SqnError::NotFresh);
        }
        if s.saturating_sub(self.max_seq()) > self.delta {
            return Err(SqnError::TooFarAhead);
        }
        Ok(())
    }

    /// Records `sqn` as accepted. Call only after [`SqnWindow::check`] and the MAC check
    /// succeeded; it never lowers an entry.
    pub fn accept(&mut self, sqn: u64) {
        let s = seq(sqn);
        if let Some(slot) = self.seq_ms.get_mut(ind(sqn)) {
            *slot = (*slot).max(s);
        }
    }

    /// SQN_MS to put in AUTS: highest accepted SEQ || its IND (0 if none).
    ///
    /// When several INDs hold the same highest SEQ the largest such IND is used, which makes
    /// the value the largest SQN accepted so far.
    pub fn sqn_ms(&self) -> u64 {
        self.seq_ms
            .iter()
            .enumerate()
            .filter(|(_, &s)| s > 0)
            .map(|(i, &s)| from_parts(s, i))
            .max()
            .unwrap_or(0)
    }

    fn max_seq(&self) -> u64 {
        self.seq_ms.iter().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_encoding_round_trips_and_masks() {
        let sqn = 0xff9b_b4d0_b607;
        assert_eq!(to_bytes(sqn), [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]);
        assert_eq!(from_bytes(&to_bytes(sqn)), sqn);
        assert_eq!(to_bytes(0x1_0000_0000_0001), [0, 0, 0, 0, 0, 1]);
        assert_eq!(seq(0x41), 2);
        assert_eq!(ind(0x41), 1);
        assert_eq!(from_parts(2, 1), 0x41);
    }

    #[test]
    fn resync_counter() {
        // SQN_MS = SEQ 7, IND 3. The next issued SQN must be SEQ 8, IND 0.
        let sqn_ms = from_parts(7, 3);
        let counter = he_counter_after_resync(sqn_ms);
        let next = next_sqn(counter).unwrap();
        assert_eq!(seq(next), 8);
        assert_eq!(ind(next), 0);
        // Nothing seen: next is SEQ 1, IND 0.
        assert_eq!(next_sqn(he_counter_after_resync(0)), Some(from_parts(1, 0)));
        // Exhausted space.
        assert_eq!(he_counter_after_resync(SQN_MAX), SQN_MAX);
        assert_eq!(next_sqn(SQN_MAX), None);
    }

    #[test]
    fn window_accepts_out_of_order_with_distinct_ind() {
        let mut w = SqnWindow::new(SqnWindow::DEFAULT_DELTA);
        let a = from_parts(5, 1);
        let b = from_parts(5, 2);
        let c = from_parts(4, 3);
        // Issued a, b, c (c older SEQ) but used in order b, c, a: all fresh.
        for sqn in [b, c, a] {
            assert_eq!(w.check(sqn), Ok(()));
            w.accept(sqn);
        }
        // Replays refused.
        for sqn in [a, b, c] {
            assert_eq!(w.check(sqn), Err(SqnError::NotFresh));
        }
        // Lower SEQ on a used IND refused; higher accepted.
        assert_eq!(w.check(from_parts(4, 1)), Err(SqnError::NotFresh));
        assert_eq!(w.check(from_parts(6, 1)), Ok(()));
        assert_eq!(w.sqn_ms(), from_parts(5, 2));
    }

    #[test]
    fn window_delta() {
        let mut w = SqnWindow::new(10);
        w.accept(from_parts(100, 0));
        assert_eq!(w.check(from_parts(110, 4)), Ok(()));
        assert_eq!(w.check(from_parts(111, 4)), Err(SqnError::TooFarAhead));
        let open = SqnWindow::new(SEQ_MAX);
        assert_eq!(open.check(SQN_MAX), Ok(()));
        assert_eq!(open.check(0), Err(SqnError::NotFresh));
    }

    #[test]
    fn array_round_trip() {
        let mut w = SqnWindow::new(99);
        w.accept(from_parts(3, 31));
        let w2 = SqnWindow::from_array(w.as_array(), 99);
        assert_eq!(w, w2);
        assert_eq!(w2.as_array()[31], 3);
        assert_eq!(SqnWindow::new(1).sqn_ms(), 0);
    }
}
