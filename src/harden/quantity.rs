//! Kubernetes resource quantities (`500m`, `1.5`, `512Mi`, `1e3`), parsed exactly so that
//! defaults can be compared with what a container already asks for.
//!
//! Implements the serialisation format of
//! <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/>.
//! Values are held as integer nano-units (`i128`), which covers every suffix from `n` to `Ei`
//! without rounding.

use std::cmp::Ordering;
use std::fmt;

/// A parsed quantity: its value in nano-units (1 = 10^-9 of the base unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

/// Why a string is not a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {reason}")]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

impl Quantity {
    /// Parses a quantity string such as `250m`, `1Gi`, `0.5` or `1e3`.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let err = |reason| QuantityError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (negative, s) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => (false, s),
        };
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(err("expected a decimal number"));
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // Scale: value = digits * 10^exp10 * 2^exp2 (nano-units applied at the end).
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(err("too many digits"));
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| err("expected a decimal number"))?
        };
        let mut exp10: i32 = -(frac_part.len() as i32);
        let mut exp2: u32 = 0;
        match suffix {
            "" => {}
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            other => {
                let exponent = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))
                    .ok_or_else(|| err("unknown suffix"))?;
                let value: i32 = exponent.parse().map_err(|_| err("invalid exponent"))?;
                if !(-30..=30).contains(&value) {
                    return Err(err("exponent out of range"));
                }
                exp10 += value;
            }
        }
        exp10 += 9; // to nano-units
        mantissa = mantissa
            .checked_mul(1i128 << exp2)
            .ok_or_else(|| err("too large"))?;
        if exp10 >= 0 {
            let factor = 10i128
                .checked_pow(exp10 as u32)
                .ok_or_else(|| err("too large"))?;
            mantissa = mantissa
                .checked_mul(factor)
                .ok_or_else(|| err("too large"))?;
        } else {
            // Kubernetes rounds sub-nano precision up; so do we.
            let divisor = 10i128.checked_pow((-exp10) as u32).unwrap_or(i128::MAX);
            mantissa = mantissa / divisor + i128::from(mantissa % divisor != 0);
        }
        Ok(Self {
            nanos: if negative { -mantissa } else { mantissa },
        })
    }

    /// The value in nano-units.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// Compares two quantity strings; `None` when either does not parse.
    pub fn cmp_str(a: &str, b: &str) -> Option<Ordering> {
        Some(Self::parse(a).ok()?.cmp(&Self::parse(b).ok()?))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}n", self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_formats_kubernetes_accepts() {
        let cases: &[(&str, i128)] = &[
            ("1", 1_000_000_000),
            ("500m", 500_000_000),
            ("0.5", 500_000_000),
            (".5", 500_000_000),
            ("1.", 1_000_000_000),
            ("250m", 250_000_000),
            ("1k", 1_000_000_000_000),
            ("1Ki", 1024 * 1_000_000_000),
            ("512Mi", 512 * (1 << 20) * 1_000_000_000),
            ("1e3", 1_000_000_000_000),
            ("1E3", 1_000_000_000_000),
            ("100n", 100),
            ("1u", 1_000),
            ("+2", 2_000_000_000),
            ("-1", -1_000_000_000),
            ("0", 0),
            ("1Ei", (1i128 << 60) * 1_000_000_000),
        ];
        for (input, nanos) in cases {
            assert_eq!(Quantity::parse(input).unwrap().nanos(), *nanos, "{input}");
        }
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for input in ["", "m", "abc", "1.2.3", "1Qi", "1e", "1e99", "--1", "1 Gi"] {
            assert!(Quantity::parse(input).is_err(), "{input} should not parse");
        }
    }

    #[test]
    fn compares_across_units() {
        assert_eq!(Quantity::cmp_str("1", "1000m"), Some(Ordering::Equal));
        assert_eq!(Quantity::cmp_str("1Gi", "1G"), Some(Ordering::Greater));
        assert_eq!(Quantity::cmp_str("100m", "0.2"), Some(Ordering::Less));
        assert_eq!(Quantity::cmp_str("x", "1"), None);
    }
}
