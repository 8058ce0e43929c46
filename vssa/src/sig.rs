//! Function signatures: the value types a compiled function takes and
//! returns.
//!
//! A [`Signature`] is packed into 64 bits so that it can be an immediate of
//! a call (`CallDirect`, `CallIndirect`): it is then part of the call's
//! content address, the verifier checks the call's arguments and
//! projections against it, and the backend builds the call's machine
//! signature from it without a table on the side. The same value is a
//! graph's own signature ([`crate::Graph::signature`]), which is part of
//! the graph's code key.
//!
//! Layout, low bits first: 4 bits parameter count (at most
//! [`Signature::MAX_PARAMS`]), 4 bits result count (at most
//! [`Signature::MAX_RESULTS`]), then 3 bits per type: the parameters from
//! bit 8, the results from bit `8 + 3 * MAX_PARAMS`. Unused bits are zero,
//! so equal signatures have equal bits.

use crate::types::Type;
use std::fmt;

/// The parameter and result types of a function (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signature(u64);

/// Why a list of types is no signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigError {
    /// More parameters or results than a signature holds.
    TooMany { what: &'static str, count: usize },
    /// A type that cannot cross a call (control, memory, tuple, frame).
    NotAValue(Type),
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigError::TooMany { what, count } => write!(
                f,
                "{count} {what} are too many (at most {} parameters and {} results)",
                Signature::MAX_PARAMS,
                Signature::MAX_RESULTS
            ),
            SigError::NotAValue(t) => write!(f, "type {t} cannot cross a call"),
        }
    }
}

impl std::error::Error for SigError {}

const TYPE_BITS: u32 = 3;
const TYPES_FROM: u32 = 8;

/// The 3-bit code of a value type (0 is no type).
fn code_of(t: Type) -> Option<u64> {
    Some(match t {
        Type::I8 => 1,
        Type::I16 => 2,
        Type::I32 => 3,
        Type::I64 => 4,
        Type::Ptr => 5,
        Type::F32 => 6,
        Type::F64 => 7,
        _ => return None,
    })
}

fn type_of_code(c: u64) -> Option<Type> {
    Some(match c {
        1 => Type::I8,
        2 => Type::I16,
        3 => Type::I32,
        4 => Type::I64,
        5 => Type::Ptr,
        6 => Type::F32,
        7 => Type::F64,
        _ => return None,
    })
}

impl Signature {
    /// The most parameters a signature holds.
    pub const MAX_PARAMS: usize = 14;
    /// The most results a signature holds.
    pub const MAX_RESULTS: usize = 4;

    /// The signature `params -> results`.
    pub fn new(params: &[Type], results: &[Type]) -> Result<Signature, SigError> {
        if params.len() > Self::MAX_PARAMS {
            return Err(SigError::TooMany {
                what: "parameters",
                count: params.len(),
            });
        }
        if results.len() > Self::MAX_RESULTS {
            return Err(SigError::TooMany {
                what: "results",
                count: results.len(),
            });
        }
        let mut bits = params.len() as u64 | (results.len() as u64) << 4;
        for (i, &t) in params.iter().enumerate() {
            let c = code_of(t).ok_or(SigError::NotAValue(t))?;
            bits |= c << (TYPES_FROM + TYPE_BITS * i as u32);
        }
        for (i, &t) in results.iter().enumerate() {
            let c = code_of(t).ok_or(SigError::NotAValue(t))?;
            bits |= c << Self::result_shift(i);
        }
        Ok(Signature(bits))
    }

    fn result_shift(i: usize) -> u32 {
        TYPES_FROM + TYPE_BITS * (Self::MAX_PARAMS + i) as u32
    }

    /// The packed bits (the immediate's encoding).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The signature these bits encode, if they are a valid encoding
    /// (counts in range, a type for every used field, unused bits zero).
    pub fn from_bits(bits: u64) -> Option<Signature> {
        let np = (bits & 0xf) as usize;
        let nr = (bits >> 4 & 0xf) as usize;
        if np > Self::MAX_PARAMS || nr > Self::MAX_RESULTS {
            return None;
        }
        let params: Option<Vec<Type>> = (0..np)
            .map(|i| type_of_code(bits >> (TYPES_FROM + TYPE_BITS * i as u32) & 7))
            .collect();
        let results: Option<Vec<Type>> = (0..nr)
            .map(|i| type_of_code(bits >> Self::result_shift(i) & 7))
            .collect();
        let sig = Signature::new(&params?, &results?).ok()?;
        (sig.0 == bits).then_some(sig)
    }

    /// How many parameters.
    pub fn param_count(self) -> usize {
        (self.0 & 0xf) as usize
    }

    /// How many results.
    pub fn result_count(self) -> usize {
        (self.0 >> 4 & 0xf) as usize
    }

    /// Parameter `i`'s type, `None` past the last.
    pub fn param(self, i: usize) -> Option<Type> {
        (i < self.param_count())
            .then(|| type_of_code(self.0 >> (TYPES_FROM + TYPE_BITS * i as u32) & 7))
            .flatten()
    }

    /// Result `i`'s type, `None` past the last.
    pub fn result(self, i: usize) -> Option<Type> {
        (i < self.result_count())
            .then(|| type_of_code(self.0 >> Self::result_shift(i) & 7))
            .flatten()
    }

    /// The parameter types, in order.
    pub fn params(self) -> Vec<Type> {
        (0..self.param_count())
            .filter_map(|i| self.param(i))
            .collect()
    }

    /// The result types, in order.
    pub fn results(self) -> Vec<Type> {
        (0..self.result_count())
            .filter_map(|i| self.result(i))
            .collect()
    }

    /// Reads the text form [`fmt::Display`] writes: `i64:ptr->f64:i32`,
    /// `_` for no types (`_->_`).
    pub fn parse(text: &str) -> Option<Signature> {
        let (p, r) = text.split_once("->")?;
        let list = |s: &str| -> Option<Vec<Type>> {
            if s == "_" {
                return Some(Vec::new());
            }
            s.split(':')
                .map(|w| Type::ALL.into_iter().find(|t| t.to_string() == w))
                .collect()
        };
        Signature::new(&list(p)?, &list(r)?).ok()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ts: Vec<Type>| {
            if ts.is_empty() {
                "_".to_string()
            } else {
                ts.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            }
        };
        write!(f, "{}->{}", list(self.params()), list(self.results()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [Type; 7] = [
        Type::I8,
        Type::I16,
        Type::I32,
        Type::I64,
        Type::Ptr,
        Type::F32,
        Type::F64,
    ];

    #[test]
    fn round_trips_types_bits_and_text() {
        let params: Vec<Type> = (0..Signature::MAX_PARAMS).map(|i| VALUES[i % 7]).collect();
        let results: Vec<Type> = (0..Signature::MAX_RESULTS)
            .map(|i| VALUES[(i + 3) % 7])
            .collect();
        for np in [0, 1, 5, Signature::MAX_PARAMS] {
            for nr in [0, 1, 2, Signature::MAX_RESULTS] {
                let s = Signature::new(&params[..np], &results[..nr]).unwrap();
                assert_eq!(s.params(), &params[..np]);
                assert_eq!(s.results(), &results[..nr]);
                assert_eq!(Signature::from_bits(s.bits()), Some(s));
                assert_eq!(Signature::parse(&s.to_string()), Some(s), "{s}");
            }
        }
        let s = Signature::new(&[Type::Ptr, Type::F64], &[Type::I32, Type::I32]).unwrap();
        assert_eq!(s.to_string(), "ptr:f64->i32:i32");
        assert_eq!(Signature::new(&[], &[]).unwrap().to_string(), "_->_");
    }

    #[test]
    fn different_signatures_have_different_bits() {
        let a = Signature::new(&[Type::I64], &[Type::I64]).unwrap();
        let b = Signature::new(&[Type::I64], &[Type::Ptr]).unwrap();
        let c = Signature::new(&[Type::I64, Type::I64], &[Type::I64]).unwrap();
        let d = Signature::new(&[], &[Type::I64, Type::I64]).unwrap();
        let all = [a, b, c, d];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x.bits(), y.bits());
            }
        }
    }

    #[test]
    fn rejects_what_is_no_signature() {
        assert_eq!(
            Signature::new(&[Type::Mem], &[]),
            Err(SigError::NotAValue(Type::Mem))
        );
        assert!(matches!(
            Signature::new(&[Type::I8; 15], &[]),
            Err(SigError::TooMany { .. })
        ));
        assert!(matches!(
            Signature::new(&[], &[Type::I8; 5]),
            Err(SigError::TooMany { .. })
        ));
        // A count past the maximum, a missing type, stray bits.
        assert_eq!(Signature::from_bits(15), None);
        assert_eq!(Signature::from_bits(1), None);
        assert_eq!(Signature::from_bits(1 << 63), None);
        for bad in ["", "i64", "i64->", "q->i64", "i64,i64->i64", "->"] {
            assert_eq!(Signature::parse(bad), None, "{bad}");
        }
    }
}
