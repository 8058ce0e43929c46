//! The text form never panics: whatever the text, `parse` answers with a
//! graph or one error naming a line and column, and a graph it accepts
//! (and the verifier passes) goes through the optimizer and back to text.

use proptest::prelude::*;
use vssa::print::print;
use vssa::{parse, FBinOp, Graph, Type};

/// A small graph with a loop, a branch, memory, a float and a guard.
fn sample_text() -> String {
    let mut g = Graph::new();
    let e = g.entry().unwrap();
    let p = g.param(e.start, 0, Type::Ptr).unwrap();
    let head = g.loop_header(3, e.ctrl).unwrap();
    let zero = g.iconst(Type::I32, 0).unwrap();
    let x = g.loop_phi(head, 1, Type::I32, zero).unwrap();
    let m = g.loop_phi(head, 2, Type::Mem, e.mem).unwrap();
    let one = g.iconst(Type::I32, 1).unwrap();
    let next = g.add(x, one).unwrap();
    let m2 = g.store(head, m, p, 4, next).unwrap();
    let (again, out) = g.branch(head, x).unwrap();
    g.set_back_input(head, again).unwrap();
    g.set_back_input(x, next).unwrap();
    g.set_back_input(m, m2).unwrap();
    let f = g.load(out, m, p, 8, Type::F64).unwrap();
    let h = g.f64const(0.5).unwrap();
    let s = g.fbin(FBinOp::Mul, f, h).unwrap();
    let fs = g.frame_state(1, m, &[x, s]).unwrap();
    let ok = g.guard(out, x, fs, 2).unwrap();
    let r = g.ret(ok, m, x).unwrap();
    g.finish(&[r]).unwrap();
    print(&g)
}

/// Parses `text`; an accepted graph that verifies is optimized and printed.
fn exercise(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Err(e) => {
            prop_assert!(e.line >= 1 && e.col >= 1, "{e}");
            prop_assert!(!e.to_string().contains('\n'), "{e}");
        }
        Ok(mut g) => {
            let printed = print(&g);
            if vssa::verify(&g).is_ok() {
                vssa::optimize(&mut g).unwrap();
                let again = print(&g);
                prop_assert!(parse(&again).is_ok(), "{again}");
            }
            prop_assert!(parse(&printed).is_ok(), "{printed}");
        }
    }
    Ok(())
}

/// Words of the text form and near misses.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..12).prop_map(|i| format!("n{i}")),
        "@[0-9a-f]{0,9}",
        prop::sample::select(vec![
            "i8",
            "i32",
            "i64",
            "ptr",
            "f32",
            "f64",
            "ctrl",
            "mem",
            "tuple",
            "frame",
            "=",
            ",",
            "(",
            ")",
            ";",
            "start",
            "proj",
            "const",
            "add",
            "loop",
            "phi",
            "region",
            "if",
            "return",
            "end",
            "load",
            "store",
            "call",
            "guard",
            "framestate",
            "select",
            "fits_exact_s",
            "fadd",
            "#1",
            "+4",
            "-8",
            "fn1",
            "r2",
            "@3",
            "0x3ff8000000000000",
            "NaN",
            "-0",
            "1.5",
            "inf",
            "99999999999999999999",
            "\n",
            "\n",
        ])
        .prop_map(String::from),
        "[ -~]{1,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_parsed_or_rejected(text in "(?s).{0,200}") {
        exercise(&text)?;
    }

    #[test]
    fn token_soup_is_parsed_or_rejected(words in prop::collection::vec(token(), 0..60)) {
        exercise(&words.join(" "))?;
    }

    #[test]
    fn damaged_graphs_are_parsed_or_rejected(
        edits in prop::collection::vec((any::<prop::sample::Index>(), token()), 1..4),
        delete in any::<bool>(),
    ) {
        let mut text = sample_text();
        for (at, word) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            if delete {
                let end = (i + word.len()).min(text.len());
                let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(i);
                text.replace_range(i..end, "");
            } else {
                text.insert_str(i, &word);
            }
        }
        exercise(&text)?;
    }
}

#[test]
fn the_sample_round_trips() {
    let text = sample_text();
    let g = parse(&text).unwrap();
    vssa::verify(&g).unwrap();
    assert_eq!(print(&g), text);
}
