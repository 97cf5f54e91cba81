//! Exact nearest-rank percentiles.
//!
//! The p-th percentile of n values is the smallest value v such that at least p % of the values
//! are ≤ v, i.e. the value of rank ⌈p·n/100⌉ (1-based) in sorted order. It is found without
//! sorting: `select_nth_unstable` puts the value of that rank in place in O(n), with everything
//! smaller before it and everything larger after, so the next (higher) percentile only needs to
//! look at what is after it.

use std::fmt;
use std::str::FromStr;

/// A percentile in thousandths of a percent (95 % → 95 000), so `99.9` is exact and ranks are
/// computed in integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentile(u32);

impl Percentile {
    /// The percentiles every report shows.
    pub const REPORTED: [Percentile; 4] = [
        Percentile(50_000),
        Percentile(95_000),
        Percentile(98_000),
        Percentile(99_000),
    ];

    /// `milli` thousandths of a percent; `None` outside (0, 100 %].
    pub fn from_milli(milli: u32) -> Option<Percentile> {
        (1..=100_000).contains(&milli).then_some(Percentile(milli))
    }

    /// Thousandths of a percent.
    pub fn milli(self) -> u32 {
        self.0
    }

    /// As a plain number of percent (95.0, 99.9).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// 0-based index of this percentile's value in `n` sorted values (`n > 0`).
    pub fn index(self, n: usize) -> usize {
        let rank = (u128::from(self.0) * n as u128).div_ceil(100_000);
        (rank.max(1) as usize).min(n) - 1
    }
}

impl fmt::Display for Percentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{int}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl FromStr for Percentile {
    type Err = String;

    /// `95`, `99.9`, `95%`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().trim_end_matches('%').trim_end();
        let bad =
            || format!("percentile {s:?} is not a number in (0, 100] with at most 3 decimals");
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if int.is_empty() && frac.is_empty()
            || frac.len() > 3
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            || int.len() > 3
        {
            return Err(bad());
        }
        let int: u32 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}").parse().map_err(|_| bad())?
        };
        Percentile::from_milli(int * 1000 + frac).ok_or_else(bad)
    }
}

/// The values of `percentiles` over `values` (reordered in place), in the order asked, or
/// `None` when `values` is empty.
pub fn select(values: &mut [u64], percentiles: &[Percentile]) -> Option<Vec<u64>> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mut order: Vec<(usize, usize)> = percentiles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.index(n), i))
        .collect();
    order.sort_unstable();
    let mut out = vec![0; percentiles.len()];
    // Everything before `lo` is ≤ every value from `lo` on.
    let mut lo = 0;
    let mut last: Option<(usize, u64)> = None;
    for (index, slot) in order {
        let value = match last {
            Some((prev, value)) if prev == index => value,
            _ => {
                let (_, v, _) = values[lo..].select_nth_unstable(index - lo);
                lo = index + 1;
                *v
            }
        };
        last = Some((index, value));
        out[slot] = value;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_sorting(values: &[u64], p: Percentile) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        // Straight from the definition: smallest v with count(x ≤ v) · 100 ≥ p · n.
        let n = sorted.len() as u128;
        *sorted
            .iter()
            .find(|v| {
                let at_most = sorted.iter().filter(|x| x <= v).count() as u128;
                at_most * 100_000 >= u128::from(p.milli()) * n
            })
            .unwrap()
    }

    #[test]
    fn small_cases() {
        let p = |s: &str| s.parse::<Percentile>().unwrap();
        let mut v = vec![15, 20, 35, 40, 50];
        assert_eq!(
            select(&mut v, &[p("30"), p("40"), p("50"), p("100")]),
            Some(vec![20, 20, 35, 50])
        );
        assert_eq!(select(&mut [], &[p("50")]), None);
        assert_eq!(select(&mut [7], &[p("0.001"), p("100")]), Some(vec![7, 7]));
        let mut hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            select(
                &mut hundred,
                &[p("99"), p("95"), p("50"), p("99.9"), p("95")]
            ),
            Some(vec![99, 95, 50, 100, 95])
        );
    }

    #[test]
    fn parse_and_display() {
        for (text, milli) in [
            ("95", 95_000),
            ("99.9", 99_900),
            ("95%", 95_000),
            ("0.5", 500),
            ("100", 100_000),
        ] {
            let p: Percentile = text.parse().unwrap();
            assert_eq!(p.milli(), milli, "{text}");
        }
        assert_eq!("99.9".parse::<Percentile>().unwrap().to_string(), "99.9");
        assert_eq!(
            "99.125".parse::<Percentile>().unwrap().to_string(),
            "99.125"
        );
        for bad in ["", "0", "100.1", "101", "abc", "99.1234", "-5", "1e2", "."] {
            assert!(bad.parse::<Percentile>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn equals_sort_based(
            values in prop::collection::vec(prop_oneof![0u64..20, 0u64..5_000_000, any::<u64>()], 1..400),
            milli in prop::collection::vec(1u32..=100_000, 1..8),
        ) {
            let ps: Vec<Percentile> = milli.iter().filter_map(|m| Percentile::from_milli(*m)).collect();
            let mut work = values.clone();
            let got = select(&mut work, &ps).unwrap();
            for (p, got) in ps.iter().zip(got) {
                prop_assert_eq!(got, by_sorting(&values, *p), "p = {}", p);
            }
        }
    }
}
