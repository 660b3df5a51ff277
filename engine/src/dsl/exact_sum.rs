//! An exact sum of floating-point numbers, so that `sum` does not depend on the order in
//! which records reach a window.
//!
//! Floating-point addition is not associative: `(a + b) + c` and `a + (b + c)` can differ
//! in the last bits. Records of one key come from several partitions and workers, in an
//! order that changes from run to run, so a plain `f64` total would make a replay differ
//! from the run it repeats. This keeps the sum exactly, as non-overlapping partials
//! (Shewchuk's algorithm, the one behind Python's `math.fsum`), and reads it as the
//! correctly rounded `f64` of the exact total, which is the same for every order.

use serde::{Deserialize, Serialize};

/// The exact sum of the numbers added so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSum {
    /// Non-overlapping partials in increasing magnitude; their exact sum is the total.
    partials: Vec<f64>,
    /// The sum of non-finite inputs (infinities and NaN), which partials cannot hold.
    non_finite: Option<f64>,
}

impl ExactSum {
    /// Adds `number` exactly.
    pub fn add(&mut self, number: f64) {
        if !number.is_finite() {
            self.non_finite = Some(self.non_finite.map_or(number, |sum| sum + number));
            return;
        }
        let mut x = number;
        let mut kept = 0;
        for index in 0..self.partials.len() {
            let mut y = self.partials[index];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                self.partials[kept] = low;
                kept += 1;
            }
            x = high;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// Adds everything `other` holds, exactly: the sum of the records behind both.
    pub fn merge(&mut self, other: &ExactSum) {
        for partial in &other.partials {
            self.add(*partial);
        }
        if let Some(non_finite) = other.non_finite {
            self.add(non_finite);
        }
    }

    /// The exact total, rounded once to the nearest `f64` (ties to even).
    pub fn value(&self) -> f64 {
        if let Some(non_finite) = self.non_finite {
            // inf + (-inf) is NaN whatever else was added; one infinity dominates.
            return non_finite;
        }
        let Some((&top, rest)) = self.partials.split_last() else {
            return 0.0;
        };
        let mut high = top;
        let mut low = 0.0;
        let mut remaining = rest.len();
        while remaining > 0 {
            remaining -= 1;
            let x = high;
            let y = rest[remaining];
            high = x + y;
            low = y - (high - x);
            if low != 0.0 {
                break;
            }
        }
        // Round half to even correctly: when the rest is exactly half an ulp, the partials
        // below decide which way.
        if remaining > 0 {
            let below = rest[remaining - 1];
            if (low < 0.0 && below < 0.0) || (low > 0.0 && below > 0.0) {
                let doubled = low * 2.0;
                let nudged = high + doubled;
                if doubled == nudged - high {
                    high = nudged;
                }
            }
        }
        high
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Numbers that are multiples of 2^-20 below 2^40, so that an `i128` of 2^-20 units
    /// holds their exact sum: the independent reference.
    fn fixed_point() -> impl Strategy<Value = i64> {
        -(1_i64 << 60)..(1_i64 << 60)
    }

    fn as_f64(units: i64) -> f64 {
        units as f64 / (1_u64 << 20) as f64
    }

    fn sum_of(numbers: &[f64]) -> ExactSum {
        let mut sum = ExactSum::default();
        for number in numbers {
            sum.add(*number);
        }
        sum
    }

    proptest! {
        #[test]
        fn the_sum_is_the_correctly_rounded_exact_total(
            units in proptest::collection::vec(fixed_point(), 0..60),
        ) {
            // `as f64` on an i64 below 2^53 and on the i128 total rounds to nearest even,
            // and dividing by a power of two is exact here.
            let numbers: Vec<f64> = units.iter().map(|u| as_f64(*u)).collect();
            let exact: i128 = numbers.iter().map(|n| (n * (1_u64 << 20) as f64) as i128).sum();
            let want = exact as f64 / (1_u64 << 20) as f64;
            prop_assert_eq!(sum_of(&numbers).value().to_bits(), want.to_bits());
        }

        #[test]
        fn the_order_of_the_numbers_does_not_matter(
            numbers in proptest::collection::vec(
                prop_oneof![any::<f64>().prop_filter("finite", |n| n.is_finite()), -1e6..1e6_f64, -1e-6..1e-6_f64],
                0..40,
            ),
            seed in any::<u64>(),
        ) {
            let mut shuffled = numbers.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for index in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(index, (state % (index as u64 + 1)) as usize);
            }
            let forward = sum_of(&numbers).value();
            let backward = sum_of(&shuffled).value();
            prop_assert!(
                forward.to_bits() == backward.to_bits() || (forward.is_nan() && backward.is_nan()),
                "{} != {}", forward, backward
            );
        }

        #[test]
        fn merging_two_sums_gives_the_sum_of_all_their_numbers(
            numbers in proptest::collection::vec(
                prop_oneof![any::<f64>(), -1e6..1e6_f64, -1e-6..1e-6_f64],
                0..40,
            ),
            split in any::<prop::sample::Index>(),
        ) {
            let at = split.index(numbers.len() + 1);
            let mut left = sum_of(&numbers[..at]);
            left.merge(&sum_of(&numbers[at..]));
            let whole = sum_of(&numbers).value();
            let merged = left.value();
            prop_assert!(
                whole.to_bits() == merged.to_bits() || (whole.is_nan() && merged.is_nan()),
                "{} != {}", whole, merged
            );
        }

        #[test]
        fn the_sum_survives_a_round_trip_through_its_stored_form(
            numbers in proptest::collection::vec(-1e9..1e9_f64, 0..30),
            more in proptest::collection::vec(-1e9..1e9_f64, 0..30),
        ) {
            // A checkpoint stores the partials; a restored sum goes on exactly.
            let stored = serde_json::to_string(&sum_of(&numbers)).unwrap();
            let mut restored: ExactSum = serde_json::from_str(&stored).unwrap();
            for number in &more {
                restored.add(*number);
            }
            let all: Vec<f64> = numbers.iter().chain(&more).copied().collect();
            prop_assert_eq!(restored.value().to_bits(), sum_of(&all).value().to_bits());
        }
    }

    #[test]
    fn a_plain_total_depends_on_the_order_and_this_one_does_not() {
        let numbers = [1e16, 1.0, -1e16, 1.0];
        let plain: f64 = numbers.iter().sum();
        let reversed: f64 = numbers.iter().rev().sum();
        assert_ne!(plain, reversed, "the example must show the problem");
        assert_eq!(sum_of(&numbers).value(), 2.0);
        let mut backwards = numbers;
        backwards.reverse();
        assert_eq!(sum_of(&backwards).value(), 2.0);
    }

    #[test]
    fn infinities_and_nan_are_kept_apart() {
        assert_eq!(sum_of(&[1.0, f64::INFINITY]).value(), f64::INFINITY);
        assert!(
            sum_of(&[f64::INFINITY, f64::NEG_INFINITY, 3.0])
                .value()
                .is_nan()
        );
        assert_eq!(sum_of(&[]).value(), 0.0);
    }
}
