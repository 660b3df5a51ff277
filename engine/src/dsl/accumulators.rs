//! The accumulators behind the built-in window aggregations that are not plain values:
//! minimum, maximum and average. Each gives the same result in any order of its records,
//! so that a replay reproduces every window bit for bit.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::exact_sum::ExactSum;

/// Keeps the smaller of `kept` and `number` in IEEE 754's total order, in which `-0.0` is
/// below `0.0` and NaN has a place: `f64::min` returns either operand for those, so its
/// result would depend on the order of the records.
pub fn keep_min(kept: &mut Option<f64>, number: f64) {
    keep(kept, number, Ordering::Less);
}

/// Keeps the larger of `kept` and `number`, in the same total order as [`keep_min`].
pub fn keep_max(kept: &mut Option<f64>, number: f64) {
    keep(kept, number, Ordering::Greater);
}

/// Merges two minimums (or maximums) with `keep`: the result of all their numbers.
pub fn merge_kept(kept: &mut Option<f64>, other: &Option<f64>, keep: fn(&mut Option<f64>, f64)) {
    if let Some(number) = other {
        keep(kept, *number);
    }
}

fn keep(kept: &mut Option<f64>, number: f64, wanted: Ordering) {
    match kept {
        Some(current) if number.total_cmp(current) != wanted => {}
        _ => *kept = Some(number),
    }
}

/// An average in the making: an exact sum and a count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Average {
    sum: ExactSum,
    count: u64,
}

impl Average {
    /// Adds a number.
    pub fn add(&mut self, number: f64) {
        self.sum.add(number);
        self.count += 1;
    }

    /// Adds the numbers `other` holds.
    pub fn merge(&mut self, other: &Average) {
        self.sum.merge(&other.sum);
        self.count += other.count;
    }

    /// The mean of the numbers added, or NaN before any.
    pub fn value(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.sum.value() / self.count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reduced(numbers: &[f64], keep: fn(&mut Option<f64>, f64)) -> Option<u64> {
        let mut kept = None;
        for number in numbers {
            keep(&mut kept, *number);
        }
        kept.map(f64::to_bits)
    }

    proptest! {
        #[test]
        fn min_and_max_do_not_depend_on_the_order(
            numbers in proptest::collection::vec(
                prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), Just(f64::NAN)],
                0..30,
            ),
        ) {
            let mut reversed = numbers.clone();
            reversed.reverse();
            prop_assert_eq!(reduced(&numbers, keep_min), reduced(&reversed, keep_min));
            prop_assert_eq!(reduced(&numbers, keep_max), reduced(&reversed, keep_max));
            // Against the total order's own minimum and maximum.
            let least = numbers.iter().copied().min_by(f64::total_cmp).map(f64::to_bits);
            let most = numbers.iter().copied().max_by(f64::total_cmp).map(f64::to_bits);
            prop_assert_eq!(reduced(&numbers, keep_min), least);
            prop_assert_eq!(reduced(&numbers, keep_max), most);
        }
    }

    proptest! {
        #[test]
        fn merged_accumulators_equal_one_over_all_the_numbers(
            numbers in proptest::collection::vec(
                prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), -1e3..1e3_f64],
                0..30,
            ),
            split in any::<prop::sample::Index>(),
        ) {
            let at = split.index(numbers.len() + 1);
            let (left, right) = numbers.split_at(at);
            for keep in [keep_min as fn(&mut Option<f64>, f64), keep_max] {
                let mut merged = None;
                for number in left {
                    keep(&mut merged, *number);
                }
                let mut other = None;
                for number in right {
                    keep(&mut other, *number);
                }
                merge_kept(&mut merged, &other, keep);
                prop_assert_eq!(merged.map(f64::to_bits), reduced(&numbers, keep));
            }
            let (mut merged, mut other, mut whole) =
                (Average::default(), Average::default(), Average::default());
            left.iter().for_each(|number| merged.add(*number));
            right.iter().for_each(|number| other.add(*number));
            numbers.iter().for_each(|number| whole.add(*number));
            merged.merge(&other);
            let (merged, whole) = (merged.value(), whole.value());
            prop_assert!(
                merged.to_bits() == whole.to_bits() || (merged.is_nan() && whole.is_nan()),
                "{} != {}", merged, whole
            );
        }
    }

    #[test]
    fn zero_signs_are_told_apart() {
        assert_eq!(reduced(&[0.0, -0.0], keep_min), Some((-0.0_f64).to_bits()));
        assert_eq!(reduced(&[-0.0, 0.0], keep_min), Some((-0.0_f64).to_bits()));
        assert_eq!(reduced(&[-0.0, 0.0], keep_max), Some(0.0_f64.to_bits()));
    }

    #[test]
    fn an_average_is_the_exact_mean() {
        let mut average = Average::default();
        assert!(average.value().is_nan());
        for number in [1e16, 1.0, -1e16, 2.0] {
            average.add(number);
        }
        assert_eq!(average.value(), 0.75);
    }
}
