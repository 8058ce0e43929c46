//! The LIR text form on the fuzzer's random graphs (floats, division,
//! loops, branches, guards, calls): printed and parsed back, a graph is
//! the same graph, before and after the optimizer.

use proptest::prelude::*;
use vssa::print::print;
use vssa::{live_graph_key, parse};
use vssa_fuzz::lir::generate;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn printed_graphs_parse_back(seed in any::<u64>(), simplify in any::<bool>(), budget in 1u32..40) {
        let mut g = generate(seed, simplify, Some(budget)).unwrap().graph;
        let text = print(&g);
        let h = parse(&text).unwrap();
        // No replacements yet: the same nodes, numbered densely.
        prop_assert_eq!(live_graph_key(&h), live_graph_key(&g));
        prop_assert_eq!(print(&parse(&print(&h)).unwrap()), print(&h));
        prop_assert_eq!(h.live_nodes().len(), g.live_nodes().len());

        vssa::optimize(&mut g).unwrap();
        let text = print(&g);
        let h = parse(&text).unwrap();
        vssa::verify(&h).unwrap();
        prop_assert_eq!(h.live_nodes().len(), g.live_nodes().len());
        let again = print(&h);
        prop_assert_eq!(print(&parse(&again).unwrap()), again);
    }
}
