//! The NHS number: ten digits, the last a modulus 11 check digit.

use std::fmt;

/// The FHIR identifier system for NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A validated NHS number, stored as its ten digits without spaces.
///
/// `Debug` never prints the number (it is a patient identifier and must not
/// reach a log line by accident); use [`NhsNumber::as_str`] where the number
/// is genuinely needed, such as when rendering a message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

/// Why a string is not a valid NHS number. The messages never repeat the
/// number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Nothing was given.
    #[error("NHS number is empty")]
    Empty,
    /// A character other than a digit (or a space in the 3-3-4 display form).
    #[error("NHS number may contain only digits (optionally spaced as 3-3-4)")]
    NotDigits,
    /// Spaces somewhere other than the 3-3-4 display form `NNN NNN NNNN`.
    #[error(
        "NHS number has spaces in the wrong places (only the 3-3-4 form `NNN NNN NNNN` is accepted)"
    )]
    MisplacedSpaces,
    /// Not ten digits.
    #[error("NHS number must have 10 digits, found {digits}")]
    WrongLength {
        /// How many digits were found.
        digits: usize,
    },
    /// The weighted sum gives a check digit of 10, which no valid number has.
    #[error(
        "NHS number is invalid: its first nine digits give check digit 10, which is never issued"
    )]
    CheckDigitTen,
    /// The tenth digit is not the modulus 11 check digit of the first nine.
    #[error("NHS number fails the modulus 11 check")]
    CheckDigitMismatch,
}

impl NhsNumber {
    /// Parses ten digits, or the 3-3-4 display form (`943 476 5919`), and
    /// checks the modulus 11 check digit.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        if input.is_empty() {
            return Err(NhsNumberError::Empty);
        }
        let digits = strip_display_spaces(input)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NhsNumberError::NotDigits);
        }
        if digits.len() != 10 {
            return Err(NhsNumberError::WrongLength {
                digits: digits.len(),
            });
        }
        let mut number = [0u8; 10];
        for (slot, byte) in number.iter_mut().zip(digits.bytes()) {
            *slot = byte - b'0';
        }
        match check_digit(&number[..9]) {
            None => Err(NhsNumberError::CheckDigitTen),
            Some(expected) if expected != number[9] => Err(NhsNumberError::CheckDigitMismatch),
            Some(_) => Ok(Self(number.map(|d| d + b'0'))),
        }
    }

    /// The ten digits, without spaces.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The synthetic test number with base `900 000 000 + n` and its check
    /// digit, or `None` when that base has no valid check digit (about one
    /// in eleven) or `n` is past the last base: for test data and
    /// benchmarks that need millions of distinct patients.
    pub fn synthetic(n: u64) -> Option<Self> {
        let base = 900_000_000u64
            .checked_add(n)
            .filter(|b| *b <= 999_999_999)?;
        let mut digits = [0u8; 10];
        let mut rest = base;
        for slot in digits[..9].iter_mut().rev() {
            *slot = (rest % 10) as u8;
            rest /= 10;
        }
        digits[9] = check_digit(&digits[..9])?;
        Some(Self(digits.map(|d| d + b'0')))
    }

    /// Synthetic test numbers (issued for testing, never to patients) start
    /// with 9.
    pub fn is_synthetic_test_range(&self) -> bool {
        self.0[0] == b'9'
    }
}

/// Accepts `NNNNNNNNNN` or `NNN NNN NNNN`; any other use of spaces is an error.
fn strip_display_spaces(input: &str) -> Result<std::borrow::Cow<'_, str>, NhsNumberError> {
    if !input.contains(char::is_whitespace) {
        return Ok(input.into());
    }
    let bytes = input.as_bytes();
    let spaced_334 = bytes.len() == 12
        && bytes[3] == b' '
        && bytes[7] == b' '
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 3 || i == 7 || !b.is_ascii_whitespace());
    if spaced_334 {
        Ok(input.replace(' ', "").into())
    } else {
        Err(NhsNumberError::MisplacedSpaces)
    }
}

/// The modulus 11 check digit of the first nine digits (weights 10 down to
/// 2), or `None` when the result is 10, which makes the number invalid.
pub fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(&digit, weight)| u32::from(digit) * weight)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        check => Some(check as u8),
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(<redacted>)")
    }
}

impl serde::Serialize for NhsNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for NhsNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn synthetic_numbers_are_valid_distinct_and_in_the_test_range() {
        let numbers: Vec<NhsNumber> = (0..1000).filter_map(NhsNumber::synthetic).collect();
        assert!(
            numbers.len() > 850 && numbers.len() < 1000,
            "{}",
            numbers.len()
        );
        for number in &numbers {
            assert_eq!(NhsNumber::parse(number.as_str()).as_ref(), Ok(number));
            assert!(number.is_synthetic_test_range());
        }
        let distinct: std::collections::HashSet<_> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
        assert_eq!(NhsNumber::synthetic(0).unwrap().as_str(), "9000000009");
        assert!(NhsNumber::synthetic(100_000_000).is_none());
    }

    #[test]
    fn accepts_valid_numbers() {
        // 943 476 5919 is the worked example in the NHS Data Dictionary;
        // 9000000009 is the PDS sandbox patient; 9449304424 a PDS test patient.
        for valid in ["9434765919", "9000000009", "9449304424", "9476719931"] {
            let parsed = NhsNumber::parse(valid).unwrap();
            assert_eq!(parsed.as_str(), valid);
            assert!(parsed.is_synthetic_test_range());
        }
    }

    #[test]
    fn check_digit_eleven_becomes_zero() {
        // 3333333333: sum = 3*(10+9+...+2) = 162, 162 mod 11 = 8, 11-8 = 3.
        assert!(NhsNumber::parse("3333333333").is_ok());
        // A number whose weighted sum is a multiple of 11 has check digit 0:
        // 0000000000 has sum 0 -> 11 - 0 = 11 -> 0.
        assert_eq!(check_digit(&[0; 9]), Some(0));
        assert!(NhsNumber::parse("0000000000").is_ok());
    }

    #[test]
    fn rejects_a_wrong_check_digit() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
        // From the corpus: fails modulus 11 (see lists/nhs_numbers_in_corpus.csv).
        assert_eq!(
            NhsNumber::parse("3478526985"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
    }

    #[test]
    fn rejects_check_digit_ten() {
        // 123456789x: sum = 1*10+2*9+3*8+4*7+5*6+6*5+7*4+8*3+9*2 = 210,
        // 210 mod 11 = 1, 11 - 1 = 10: no final digit can make it valid.
        assert_eq!(check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), None);
        for last in 0..=9 {
            assert_eq!(
                NhsNumber::parse(&format!("123456789{last}")),
                Err(NhsNumberError::CheckDigitTen)
            );
        }
    }

    #[test]
    fn rejects_wrong_lengths() {
        assert_eq!(
            NhsNumber::parse("111222223"),
            Err(NhsNumberError::WrongLength { digits: 9 })
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength { digits: 11 })
        );
        assert_eq!(NhsNumber::parse(""), Err(NhsNumberError::Empty));
    }

    #[test]
    fn spaces_only_in_the_3_3_4_display_form() {
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
        for bad in [
            "9434 765 919",
            " 9434765919",
            "9434765919 ",
            "943  476 5919",
            "943\t476 5919",
        ] {
            assert_eq!(
                NhsNumber::parse(bad),
                Err(NhsNumberError::MisplacedSpaces),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_non_digits() {
        for bad in ["94347659I9", "943-476-5919", "９４３４７６５９１９"] {
            assert!(NhsNumber::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NhsNumber::parse("94347659a9"),
            Err(NhsNumberError::NotDigits)
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_number() {
        let number = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{number:?}").contains("9434765919"));
        let error = NhsNumber::parse("9434765918").unwrap_err();
        assert!(!error.to_string().contains("943476591"));
    }

    proptest! {
        #[test]
        fn every_nine_digit_prefix_has_at_most_one_valid_completion(prefix in proptest::array::uniform9(0u8..10)) {
            let text: String = prefix.iter().map(|d| char::from(b'0' + d)).collect();
            let valid: Vec<u8> = (0..=9u8)
                .filter(|last| NhsNumber::parse(&format!("{text}{last}")).is_ok())
                .collect();
            match check_digit(&prefix) {
                Some(check) => prop_assert_eq!(valid, vec![check]),
                None => prop_assert!(valid.is_empty()),
            }
        }

        #[test]
        fn a_single_digit_change_is_always_caught(prefix in proptest::array::uniform9(0u8..10), position in 0usize..10, delta in 1u8..10) {
            if let Some(check) = check_digit(&prefix) {
                let mut digits: Vec<u8> = prefix.to_vec();
                digits.push(check);
                digits[position] = (digits[position] + delta) % 10;
                let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                prop_assert!(NhsNumber::parse(&text).is_err());
            }
        }
    }
}
