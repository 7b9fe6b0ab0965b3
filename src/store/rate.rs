//! The hold-and-join rate of one client, shared by every instance on a store: a token bucket
//! kept as one instant, the time at which it is full again (a generic cell rate). A token is
//! taken by moving that instant one interval later, allowed while it stays within the burst of
//! now; an empty or absent bucket is full. Both stores keep the instant per client and move it
//! with one conditional write, so concurrent takes on any instances never overdraw it.

/// A bucket's shape: one token every `every_us`, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub every_us: i64,
    pub burst: u32,
}

impl Bucket {
    /// How far ahead of now the bucket's instant may be when a token is taken: the tokens it
    /// may still hold after this one.
    pub fn tolerance_us(&self) -> i64 {
        (i64::from(self.burst) - 1).max(0) * self.every_us
    }

    /// The bucket's instant after one token is taken at `now` (µs), from `full_at` (its
    /// instant before, `None` when it has none); or, with no token left, how long until one is.
    pub fn take(&self, full_at: Option<i64>, now: i64) -> Result<i64, i64> {
        let base = full_at.unwrap_or(now).max(now);
        let ahead = base - now;
        if ahead <= self.tolerance_us() {
            Ok(base + self.every_us)
        } else {
            Err(ahead - self.tolerance_us())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;

    #[test]
    fn a_full_bucket_gives_its_burst_then_one_token_per_interval() {
        let b = Bucket {
            every_us: 2000,
            burst: 30,
        };
        let (mut at, now) = (None, 1_000_000);
        for i in 0..30 {
            at = Some(
                b.take(at, now)
                    .unwrap_or_else(|w| panic!("token {i}: wait {w}")),
            );
        }
        assert_eq!(b.take(at, now), Err(2000), "the 31st waits one interval");
        assert_eq!(b.take(at, now + 1999), Err(1));
        let later = b.take(at, now + 2000).unwrap();
        assert_eq!(b.take(Some(later), now + 2000), Err(2000));
        // Idle long enough, the bucket is full again, not fuller.
        let idle = now + 10 * 60_000;
        let mut again = at;
        for _ in 0..30 {
            again = Some(b.take(again, idle).unwrap());
        }
        assert!(b.take(again, idle).is_err());
    }

    #[test]
    fn a_bucket_of_one_refuses_until_its_interval_passed() {
        let b = Bucket {
            every_us: 120_000,
            burst: 1,
        };
        let at = b.take(None, 0).unwrap();
        assert_eq!(b.take(Some(at), 60_000), Err(60_000));
        assert!(b.take(Some(at), 120_000).is_ok());
    }
}
