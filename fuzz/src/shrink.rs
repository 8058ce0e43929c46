//! Delta-debugging shrink of byte strings.
//!
//! A failing input found at random is mostly noise. [`shrink_bytes`]
//! removes chunks (halves, quarters, ... single bytes) as long as the
//! failure persists, and finishes with a pass that tries removing matched
//! `[`...`]` pairs' brackets together, which single-byte removal cannot do
//! for Brainfuck without unbalancing the source.

/// Shrinks `input` while `fails` holds, with at most `budget` calls of
/// `fails`. Returns the smallest failing input found (`input` itself if
/// nothing smaller fails).
pub fn shrink_bytes(input: &[u8], budget: usize, fails: &mut dyn FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut best = input.to_vec();
    let mut calls = 0usize;
    let mut chunk = best.len().div_ceil(2).max(1);
    'outer: loop {
        let mut progress = false;
        let mut start = 0;
        while start < best.len() {
            if calls >= budget {
                break 'outer;
            }
            let end = (start + chunk).min(best.len());
            let mut cand = Vec::with_capacity(best.len() - (end - start));
            cand.extend_from_slice(&best[..start]);
            cand.extend_from_slice(&best[end..]);
            calls += 1;
            if fails(&cand) {
                best = cand;
                progress = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            if !progress {
                break;
            }
        } else {
            chunk = chunk.div_ceil(2);
        }
    }
    // Matched bracket pairs, innermost first (found with a stack).
    let mut i = 0;
    while i < best.len() && calls < budget {
        if best[i] == b'[' {
            if let Some(j) = matching_close(&best, i) {
                let mut cand = best.clone();
                cand.remove(j);
                cand.remove(i);
                calls += 1;
                if fails(&cand) {
                    best = cand;
                    continue;
                }
            }
        }
        i += 1;
    }
    best
}

/// The index of the `]` matching the `[` at `open`, if any.
pub(crate) fn matching_close(s: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &b) in s.iter().enumerate().skip(open) {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_to_the_essential_bytes() {
        let input = b"aaaaXbbbbYcccc";
        let mut fails = |s: &[u8]| s.contains(&b'X') && s.contains(&b'Y');
        assert_eq!(shrink_bytes(input, 1000, &mut fails), b"XY");
    }

    #[test]
    fn removes_bracket_pairs() {
        // Fails while there is a '.' and brackets balance.
        let mut fails = |s: &[u8]| {
            let mut d = 0i32;
            for &b in s {
                d += i32::from(b == b'[') - i32::from(b == b']');
                if d < 0 {
                    return false;
                }
            }
            d == 0 && s.contains(&b'.')
        };
        assert_eq!(shrink_bytes(b"[[.]]", 1000, &mut fails), b".");
    }

    #[test]
    fn respects_the_budget() {
        let mut calls = 0;
        let mut fails = |_: &[u8]| {
            calls += 1;
            false
        };
        shrink_bytes(&[0; 100], 10, &mut fails);
        assert_eq!(calls, 10);
    }
}
