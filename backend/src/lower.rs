//! Lowering: a scheduled vssa graph becomes one Cranelift IR function.
//!
//! The schedule already decided where every node runs, so lowering is a
//! straight walk: one Cranelift block per schedule block (same order), block
//! parameters for value phis, one Cranelift value per value node. Memory,
//! control and tuple nodes only order things in the graph; the schedule has
//! already turned that order into instruction order, so they lower to
//! nothing.
//!
//! A graph without a signature is the entry point
//! `extern "C" fn(*mut Context) -> u32`: its single parameter is `Proj 2`
//! of `Start`, and the returned value is zero-extended or truncated to 32
//! bits. A graph with a [`vssa::Signature`] is a function of that
//! signature in the platform's C calling convention ([`typed_signature`]):
//! parameter `i` is `Proj 2+i` of `Start`, and a `Return` returns all its
//! values (Cranelift's multi-value return).
//!
//! Calls: a host call (`Call`) calls the embedder's function by number (a
//! relocation, see [`crate::image`]); one with several results passes a
//! stack slot for them ([`crate::HostFn`]). A direct call (`CallDirect`)
//! calls compiled function `callee` by number, likewise a relocation the
//! embedder's [`crate::Jit::define_function`] fills in; an indirect call
//! (`CallIndirect`) calls its target address. Both use the callee's
//! signature as [`typed_signature`] makes it, so compiled functions call
//! each other with Cranelift's own multi-value returns.
//!
//! Floats live in Cranelift's float registers (`f32`, `f64`). Two LIR
//! rules need more than one instruction, because Cranelift leaves them
//! open or traps: a float operation whose result is NaN gives the
//! canonical NaN (a test and a select after it, [`Lowerer::canonical`]),
//! and integer division and remainder test their divisor and never trap
//! ([`Lowerer::lower_div`]).
//!
//! Every node is checked before an instruction is built (input counts,
//! operand types, availability of definitions), so a bad graph or schedule
//! is a [`BackendError`], never malformed IR handed to Cranelift.

use crate::cfg::Dominators;
use crate::error::BackendError;
use crate::host::{clif_type, HostFn};
use crate::image::{FUNCTION_NAMESPACE, HOST_NAMESPACE};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    self, types, AbiParam, BlockArg, ExtFuncData, ExternalName, FuncRef, Function, InstBuilder,
    MemFlagsData, SigRef, StackSlotData, StackSlotKind, UserExternalName, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use std::collections::HashMap;
use vssa::float::{fits_bounds, CANONICAL_NAN_F32, CANONICAL_NAN_F64};
use vssa::{
    BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Graph, NodeId, Op, Signature,
    Type, UnOp,
};
use vssa_schedule::{Schedule, Terminator};

/// The signature of every compiled graph: `extern "C" fn(*mut u8) -> u32`
/// in the target's default (C) calling convention.
pub fn entry_signature(call_conv: CallConv) -> ir::Signature {
    let mut sig = ir::Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

/// The machine signature of a function of signature `sig`: its values in
/// order, `I8`/`I16` zero-extended to 32 bits (as host functions take
/// them), in calling convention `call_conv`. Both a compiled function and
/// every call of one use this, so they agree.
pub fn typed_signature(sig: Signature, call_conv: CallConv) -> ir::Signature {
    let param = |t: Type| {
        // A signature holds only value types, which all have one.
        let ty = clif_type(t).unwrap_or(types::I64);
        let p = AbiParam::new(ty);
        if ty.bits() < 32 {
            p.uext()
        } else {
            p
        }
    };
    let mut s = ir::Signature::new(call_conv);
    s.params.extend(sig.params().into_iter().map(param));
    s.returns.extend(sig.results().into_iter().map(param));
    s
}

/// The machine signature of the function `g` compiles to: the entry
/// signature for a graph without a signature, else [`typed_signature`].
pub fn function_signature(g: &Graph, call_conv: CallConv) -> Result<ir::Signature, BackendError> {
    Ok(match g.signature() {
        None => entry_signature(call_conv),
        Some(sig) => typed_signature(sig, call_conv),
    })
}

/// Lowers `g` as scheduled by `s` into a new Cranelift function named `name`.
///
/// `config` supplies the calling convention (used for the entry and for
/// host calls) and the pointer width, which must be 64 bits.
pub fn lower(
    g: &Graph,
    s: &Schedule,
    hosts: &[HostFn],
    config: TargetFrontendConfig,
    name: &str,
) -> Result<Function, BackendError> {
    let mut fctx = FunctionBuilderContext::new();
    lower_with(g, s, hosts, config, name, &mut fctx)
}

/// [`lower`] reusing a builder context's allocations across functions.
///
/// After an error the context is replaced by a fresh one, because a
/// half-built function leaves it dirty.
pub fn lower_with(
    g: &Graph,
    s: &Schedule,
    hosts: &[HostFn],
    config: TargetFrontendConfig,
    name: &str,
    fctx: &mut FunctionBuilderContext,
) -> Result<Function, BackendError> {
    if config.pointer_bits() != 64 {
        return Err(BackendError::Isa(format!(
            "vssa needs 64-bit pointers, the target has {}",
            config.pointer_bits()
        )));
    }
    let dom = Dominators::compute(s)?;
    let sig = function_signature(g, config.default_call_conv)?;
    let mut func = Function::with_name_signature(UserFuncName::testcase(name), sig);
    let result = Lowerer::run(g, s, hosts, config, &dom, &mut func, fctx);
    match result {
        Ok(()) => Ok(func),
        Err(e) => {
            *fctx = FunctionBuilderContext::new();
            Err(e)
        }
    }
}

/// What lowering knows about a node so far.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Not lowered (yet).
    Undef,
    /// Lowered; has no Cranelift value (control, memory).
    NoValue,
    /// A value defined in schedule block `block`.
    Val { v: Value, block: u32 },
    /// A call, defined in `block`; `Proj 1+k` reads its result `k`
    /// (in [`Lowerer::call_results`]).
    Call { block: u32 },
}

struct Lowerer<'a, 'f> {
    g: &'a Graph,
    s: &'a Schedule,
    hosts: &'a [HostFn],
    dom: &'a Dominators,
    call_conv: CallConv,
    b: FunctionBuilder<'f>,
    blocks: Vec<ir::Block>,
    /// Per schedule block: its value phis (resolved), in block-param order.
    phi_params: Vec<Vec<NodeId>>,
    slots: Vec<Slot>,
    /// The imported host function per table entry, on first call.
    host_sigs: Vec<Option<FuncRef>>,
    /// The imported compiled function per callee number, on first call.
    callees: HashMap<u32, FuncRef>,
    /// The imported signature of indirect calls, per signature.
    indirect_sigs: HashMap<Signature, SigRef>,
    /// Each lowered call's results, in projection order.
    call_results: HashMap<NodeId, Vec<Value>>,
    /// The schedule block being lowered.
    cur: usize,
}

/// Load/store flags: accesses through the context are in bounds (the
/// graph's producer guarantees it), so they cannot trap; they are not
/// necessarily aligned (a tape cell read as `I32` can sit at any byte).
fn mem_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn unsupported(node: NodeId, reason: impl Into<String>) -> BackendError {
    BackendError::Unsupported {
        node,
        reason: reason.into(),
    }
}

/// The Cranelift condition of a float comparison.
fn float_cc(op: FCmpOp) -> FloatCC {
    match op {
        FCmpOp::Eq => FloatCC::Equal,
        FCmpOp::One => FloatCC::OrderedNotEqual,
        FCmpOp::Lt => FloatCC::LessThan,
        FCmpOp::Le => FloatCC::LessThanOrEqual,
        FCmpOp::Gt => FloatCC::GreaterThan,
        FCmpOp::Ge => FloatCC::GreaterThanOrEqual,
        FCmpOp::Ord => FloatCC::Ordered,
        FCmpOp::Uno => FloatCC::Unordered,
        FCmpOp::Ueq => FloatCC::UnorderedOrEqual,
        FCmpOp::Une => FloatCC::NotEqual,
        FCmpOp::Ult => FloatCC::UnorderedOrLessThan,
        FCmpOp::Ule => FloatCC::UnorderedOrLessThanOrEqual,
        FCmpOp::Ugt => FloatCC::UnorderedOrGreaterThan,
        FCmpOp::Uge => FloatCC::UnorderedOrGreaterThanOrEqual,
    }
}

/// `value` wrapped to `ty`'s width, as Cranelift wants `iconst` immediates
/// (zero-extended: `iconst.i8 255`, not `-1`).
fn const_bits(ty: ir::Type, value: i64) -> i64 {
    match ty.bits() {
        b @ 1..=63 => ((value as u64) & ((1u64 << b) - 1)) as i64,
        _ => value,
    }
}

impl<'a, 'f> Lowerer<'a, 'f> {
    fn run(
        g: &'a Graph,
        s: &'a Schedule,
        hosts: &'a [HostFn],
        config: TargetFrontendConfig,
        dom: &'a Dominators,
        func: &'f mut Function,
        fctx: &'f mut FunctionBuilderContext,
    ) -> Result<(), BackendError> {
        let mut l = Lowerer {
            g,
            s,
            hosts,
            dom,
            call_conv: config.default_call_conv,
            b: FunctionBuilder::new(func, fctx),
            blocks: Vec::with_capacity(s.blocks.len()),
            phi_params: Vec::with_capacity(s.blocks.len()),
            slots: vec![Slot::Undef; g.len()],
            host_sigs: vec![None; hosts.len()],
            callees: HashMap::new(),
            indirect_sigs: HashMap::new(),
            call_results: HashMap::new(),
            cur: 0,
        };
        l.declare_blocks()?;
        for i in 0..s.blocks.len() {
            l.lower_block(i)?;
        }
        l.b.seal_all_blocks();
        l.b.finalize(config);
        Ok(())
    }

    /// A schedule-provided id, checked and resolved.
    fn id(&self, n: NodeId) -> Result<NodeId, BackendError> {
        if self.g.get(n).is_none() {
            return Err(BackendError::UnknownNode(n));
        }
        Ok(self.g.resolve(n))
    }

    /// Input `i` of `n` (resolved), or an error if `n` has fewer inputs.
    fn input(&self, n: NodeId, i: usize) -> Result<NodeId, BackendError> {
        let arity = self.g.arity(n);
        if i >= arity {
            return Err(unsupported(
                n,
                format!("{} has {arity} inputs, input {i} is missing", self.g.op(n)),
            ));
        }
        Ok(self.g.input(n, i))
    }

    fn define(&mut self, n: NodeId, slot: Slot) -> Result<(), BackendError> {
        let s = &mut self.slots[n.index()];
        if !matches!(s, Slot::Undef) {
            return Err(BackendError::Duplicate(n));
        }
        *s = slot;
        Ok(())
    }

    fn define_val(&mut self, n: NodeId, v: Value) -> Result<(), BackendError> {
        let block = self.cur as u32;
        self.define(n, Slot::Val { v, block })
    }

    fn available(&self, def_block: u32, use_block: usize) -> bool {
        def_block as usize == use_block || self.dom.dominates(def_block as usize, use_block)
    }

    /// The value of `n` as used by `user` at the end of block `at`.
    fn value_at(&self, user: NodeId, n: NodeId, at: usize) -> Result<Value, BackendError> {
        match self.slots[n.index()] {
            Slot::Val { v, block } if self.available(block, at) => Ok(v),
            Slot::Val { .. } | Slot::Undef => Err(BackendError::NotAvailable { node: n, user }),
            Slot::NoValue | Slot::Call { .. } => Err(BackendError::NoValue { node: n, user }),
        }
    }

    /// The value of input `i` of `n`, in the current block.
    fn operand(&self, n: NodeId, i: usize) -> Result<Value, BackendError> {
        let x = self.input(n, i)?;
        self.value_at(n, x, self.cur)
    }

    fn vty(&self, v: Value) -> ir::Type {
        self.b.func.dfg.value_type(v)
    }

    /// The Cranelift type of `n`'s result, which must be a value.
    fn result_type(&self, n: NodeId) -> Result<ir::Type, BackendError> {
        let t = self.g.ty(n);
        clif_type(t).ok_or_else(|| unsupported(n, format!("{} of type {t}", self.g.op(n))))
    }

    /// Operand `i` of `n`, required to have type `ty`.
    fn operand_of(&self, n: NodeId, i: usize, ty: ir::Type) -> Result<Value, BackendError> {
        let v = self.operand(n, i)?;
        let got = self.vty(v);
        if got != ty {
            return Err(unsupported(
                n,
                format!("input {i} is {got}, expected {ty} ({})", self.g.op(n)),
            ));
        }
        Ok(v)
    }

    /// Creates every Cranelift block up front (branches may go forward)
    /// with parameters for the value phis.
    fn declare_blocks(&mut self) -> Result<(), BackendError> {
        for (i, block) in self.s.blocks.iter().enumerate() {
            let cb = self.b.create_block();
            self.blocks.push(cb);
            // A function returns once, so a block that returns is never
            // hot: Cranelift moves cold blocks out of the way of the rest.
            if i != 0 && matches!(block.term, Terminator::Return { .. }) {
                self.b.set_cold_block(cb);
            }
            if i == 0 {
                self.b.append_block_params_for_function_params(cb);
                if !block.phis.is_empty() {
                    return Err(BackendError::BadBlock {
                        block: 0,
                        reason: "the entry block has phis".into(),
                    });
                }
            }
            let head = self.id(block.head)?;
            let mut params = Vec::new();
            for &phi in &block.phis {
                let phi = self.id(phi)?;
                if !matches!(self.g.op(phi), Op::Phi { .. }) {
                    return Err(BackendError::BadBlock {
                        block: i,
                        reason: format!("{phi} in the phi list is a {}", self.g.op(phi)),
                    });
                }
                if self.input(phi, 0)? != head {
                    return Err(BackendError::BadBlock {
                        block: i,
                        reason: format!("{phi} is a phi of another region, not of {head}"),
                    });
                }
                match self.g.ty(phi) {
                    Type::Mem => self.define(phi, Slot::NoValue)?,
                    t => {
                        let ty = clif_type(t)
                            .ok_or_else(|| unsupported(phi, format!("phi of type {t}")))?;
                        let v = self.b.append_block_param(cb, ty);
                        self.define(phi, Slot::Val { v, block: i as u32 })?;
                        params.push(phi);
                    }
                }
            }
            self.phi_params.push(params);
        }
        Ok(())
    }

    fn lower_block(&mut self, i: usize) -> Result<(), BackendError> {
        self.cur = i;
        self.b.switch_to_block(self.blocks[i]);
        let s = self.s;
        let block = &s.blocks[i];
        for &n in &block.nodes {
            let n = self.id(n)?;
            self.lower_node(n)?;
        }
        let head = self.id(block.head)?;
        match block.term {
            Terminator::Jump { target } => {
                let (from, t) = self.through_empty(i, target.index());
                let args = self.edge_args(from, t)?;
                self.b.ins().jump(self.blocks[t], &args);
            }
            Terminator::Branch {
                cond,
                if_true,
                if_false,
            } => {
                let cond = self.id(cond)?;
                let c = self.value_at(head, cond, i)?;
                let (t, f) = (if_true.index(), if_false.index());
                if t == f && !self.phi_params[t].is_empty() {
                    return Err(BackendError::BadBlock {
                        block: i,
                        reason: format!("both branch edges go to b{t}, which has phis"),
                    });
                }
                let ((tfrom, t), (ffrom, f)) =
                    match (self.through_empty(i, t), self.through_empty(i, f)) {
                        // Both edges lead to one block: keep the blocks
                        // between, which tell the edges apart.
                        ((_, a), (_, b)) if a == b => ((i, t), (i, f)),
                        edges => edges,
                    };
                // Where the true edge really leads, not the empty block
                // passed through: a loop's `]` test whose true edge goes
                // through its (empty) latch block to the header is not
                // inverted. Inverted, it would test `c == 0`, which
                // Cranelift rewrites for `c = x + k` into `x == -k`,
                // keeping the old `x` live across the back edge next to
                // the new one (a register copy on every trip).
                let next = t == i + 1;
                let targs = self.edge_args(tfrom, t)?;
                let fargs = self.edge_args(ffrom, f)?;
                if next {
                    // Cranelift lays out a branch's else-target right after
                    // it (its block order visits the then-target first), so
                    // the target the schedule placed next goes there: the
                    // loop body after its test, not after the whole program.
                    let z = self.b.ins().icmp_imm_u(IntCC::Equal, c, 0);
                    self.b
                        .ins()
                        .brif(z, self.blocks[f], &fargs, self.blocks[t], &targs);
                } else {
                    self.b
                        .ins()
                        .brif(c, self.blocks[t], &targs, self.blocks[f], &fargs);
                }
            }
            Terminator::Return { ret, .. } if self.g.signature().is_some() => {
                let ret = self.id(ret)?;
                self.lower_typed_return(ret, i)?;
            }
            Terminator::Return { ret, value } => {
                let ret = self.id(ret)?;
                let value = self.id(value)?;
                let v = self.value_at(ret, value, i)?;
                // A float leaves as its bits, like the interpreter's result.
                let v = match self.vty(v) {
                    types::F32 => self.b.ins().bitcast(types::I32, MemFlagsData::new(), v),
                    types::F64 => self.b.ins().bitcast(types::I64, MemFlagsData::new(), v),
                    _ => v,
                };
                let v = match self.vty(v).bits() {
                    32 => v,
                    b if b < 32 => self.b.ins().uextend(types::I32, v),
                    _ => self.b.ins().ireduce(types::I32, v),
                };
                self.b.ins().return_(&[v]);
            }
        }
        Ok(())
    }

    /// Where an edge from block `from` to block `to` really leads: a block
    /// that holds nothing and only jumps on (such as the latch that the
    /// `]` test's projection makes of a loop's back edge) is passed
    /// through, so the branch goes straight to the block after it and a
    /// loop's back edge is its conditional branch, not a branch and a jump.
    /// Returns the last block passed through (whose edge the phis' inputs
    /// belong to) and the target. The skipped block is still lowered, and
    /// Cranelift drops it as unreachable.
    fn through_empty(&self, mut from: usize, mut to: usize) -> (usize, usize) {
        // Chains of empty blocks are short; the bound keeps a cycle of
        // them (which a valid schedule never has) from looping.
        for _ in 0..4 {
            let b = &self.s.blocks[to];
            match b.term {
                Terminator::Jump { target }
                    if to != 0
                        && b.nodes.is_empty()
                        && b.phis.is_empty()
                        && b.preds.len() == 1
                        && b.preds[0].index() == from =>
                {
                    from = to;
                    to = target.index();
                }
                _ => break,
            }
        }
        (from, to)
    }

    /// The block arguments for the edge from block `from` to `target`:
    /// for each value phi, its input for this predecessor. The values are
    /// taken at the end of the current block, which `from` is or which
    /// only empty blocks separate from it.
    fn edge_args(&self, from: usize, target: usize) -> Result<Vec<BlockArg>, BackendError> {
        let phis = &self.phi_params[target];
        if phis.is_empty() {
            return Ok(Vec::new());
        }
        let preds = &self.s.blocks[target].preds;
        let mut positions = preds
            .iter()
            .enumerate()
            .filter(|(_, p)| p.index() == from)
            .map(|(k, _)| k);
        let pred_index = match (positions.next(), positions.next()) {
            (Some(k), None) => k,
            (found, _) => {
                return Err(BackendError::BadBlock {
                    block: target,
                    reason: format!(
                        "b{from} must be listed exactly once among its predecessors ({})",
                        if found.is_none() {
                            "missing"
                        } else {
                            "repeated"
                        }
                    ),
                })
            }
        };
        let params = self.b.func.dfg.block_params(self.blocks[target]);
        let mut args = Vec::with_capacity(phis.len());
        for (k, &phi) in phis.iter().enumerate() {
            let x = self.input(phi, 1 + pred_index)?;
            let v = self.value_at(phi, x, self.cur)?;
            let want = self.b.func.dfg.value_type(params[k]);
            if self.vty(v) != want {
                return Err(unsupported(
                    phi,
                    format!(
                        "input from b{} is {}, the phi is {want}",
                        self.cur,
                        self.vty(v)
                    ),
                ));
            }
            args.push(BlockArg::Value(v));
        }
        Ok(args)
    }

    fn lower_node(&mut self, n: NodeId) -> Result<(), BackendError> {
        let op = self.g.op(n);
        match op {
            Op::Start | Op::Region | Op::Loop { .. } | Op::If | Op::Return | Op::End => {
                self.define(n, Slot::NoValue)
            }
            Op::Phi { .. } => Err(unsupported(
                n,
                "a phi must be listed in its block's phis, not its nodes",
            )),
            Op::Guard { .. }
            | Op::FrameState { .. }
            | Op::InlinedFrame { .. }
            | Op::Boxed
            | Op::Materialize { .. } => Err(unsupported(
                n,
                "guards must be lowered (vssa_deopt::lower_guards) before scheduling",
            )),
            Op::Proj { index } => self.lower_proj(n, index),
            Op::Const { value } => {
                let ty = self.result_type(n)?;
                let v = match ty {
                    types::F32 => self.b.ins().f32const(Ieee32::with_bits(value as u32)),
                    types::F64 => self.b.ins().f64const(Ieee64::with_bits(value as u64)),
                    _ => self.b.ins().iconst(ty, const_bits(ty, value)),
                };
                self.define_val(n, v)
            }
            Op::FBin(op) => {
                let ty = self.float_result(n)?;
                let a = self.operand_of(n, 0, ty)?;
                let b = self.operand_of(n, 1, ty)?;
                let ins = self.b.ins();
                let v = match op {
                    FBinOp::Add => ins.fadd(a, b),
                    FBinOp::Sub => ins.fsub(a, b),
                    FBinOp::Mul => ins.fmul(a, b),
                    FBinOp::Div => ins.fdiv(a, b),
                    FBinOp::Min => ins.fmin(a, b),
                    FBinOp::Max => ins.fmax(a, b),
                    FBinOp::Copysign => ins.fcopysign(a, b),
                };
                let v = if op == FBinOp::Copysign {
                    v
                } else {
                    self.canonical(v)
                };
                self.define_val(n, v)
            }
            Op::FUn(op) => {
                let ty = self.float_result(n)?;
                let a = self.operand_of(n, 0, ty)?;
                let ins = self.b.ins();
                let v = match op {
                    FUnOp::Neg => ins.fneg(a),
                    FUnOp::Abs => ins.fabs(a),
                    FUnOp::Sqrt => ins.sqrt(a),
                    FUnOp::Floor => ins.floor(a),
                    FUnOp::Ceil => ins.ceil(a),
                    FUnOp::Trunc => ins.trunc(a),
                    FUnOp::Nearest => ins.nearest(a),
                };
                let v = if matches!(op, FUnOp::Neg | FUnOp::Abs) {
                    v
                } else {
                    self.canonical(v)
                };
                self.define_val(n, v)
            }
            Op::FCmp(op) => {
                if self.g.ty(n) != Type::I8 {
                    return Err(unsupported(n, "a comparison must have type i8"));
                }
                let a = self.operand(n, 0)?;
                if !self.vty(a).is_float() {
                    return Err(unsupported(n, format!("{op:?} of {}", self.vty(a))));
                }
                let b = self.operand_of(n, 1, self.vty(a))?;
                // fcmp yields an i8 that is 0 or 1, like vssa's FCmp.
                let v = self.b.ins().fcmp(float_cc(op), a, b);
                self.define_val(n, v)
            }
            Op::FConv(op) => self.lower_fconv(n, op),
            Op::FFits { op, bits } => self.lower_ffits(n, op, bits),
            Op::Bin(bop) => {
                let ty = self.result_type(n)?;
                let a = self.operand_of(n, 0, ty)?;
                let is_shift = matches!(bop, BinOp::Shl | BinOp::Ushr | BinOp::Sshr);
                let b = if is_shift {
                    // Cranelift takes any integer shift amount, modulo the width.
                    self.operand(n, 1)?
                } else {
                    self.operand_of(n, 1, ty)?
                };
                let v = match bop {
                    BinOp::Add => self.b.ins().iadd(a, b),
                    BinOp::Sub => self.b.ins().isub(a, b),
                    BinOp::Mul => self.b.ins().imul(a, b),
                    BinOp::And => self.b.ins().band(a, b),
                    BinOp::Or => self.b.ins().bor(a, b),
                    BinOp::Xor => self.b.ins().bxor(a, b),
                    BinOp::Shl => self.b.ins().ishl(a, b),
                    BinOp::Ushr => self.b.ins().ushr(a, b),
                    BinOp::Sshr => self.b.ins().sshr(a, b),
                    BinOp::Sdiv | BinOp::Udiv | BinOp::Srem | BinOp::Urem => {
                        self.lower_div(bop, ty, a, b)
                    }
                };
                self.define_val(n, v)
            }
            Op::Un(uop) => {
                let ty = self.result_type(n)?;
                let a = self.operand_of(n, 0, ty)?;
                let v = match uop {
                    UnOp::Neg => self.b.ins().ineg(a),
                    UnOp::Not => self.b.ins().bnot(a),
                };
                self.define_val(n, v)
            }
            Op::Cmp(cop) => {
                if self.g.ty(n) != Type::I8 {
                    return Err(unsupported(n, "a comparison must have type i8"));
                }
                let a = self.operand(n, 0)?;
                let b = self.operand_of(n, 1, self.vty(a))?;
                let cc = match cop {
                    CmpOp::Eq => IntCC::Equal,
                    CmpOp::Ne => IntCC::NotEqual,
                    CmpOp::Slt => IntCC::SignedLessThan,
                    CmpOp::Sle => IntCC::SignedLessThanOrEqual,
                    CmpOp::Sgt => IntCC::SignedGreaterThan,
                    CmpOp::Sge => IntCC::SignedGreaterThanOrEqual,
                    CmpOp::Ult => IntCC::UnsignedLessThan,
                    CmpOp::Ule => IntCC::UnsignedLessThanOrEqual,
                    CmpOp::Ugt => IntCC::UnsignedGreaterThan,
                    CmpOp::Uge => IntCC::UnsignedGreaterThanOrEqual,
                };
                // icmp yields an i8 that is 0 or 1, exactly vssa's Cmp.
                let v = self.b.ins().icmp(cc, a, b);
                self.define_val(n, v)
            }
            Op::Conv(cop) => {
                let to = self.result_type(n)?;
                let a = self.operand(n, 0)?;
                let from = self.vty(a);
                let v = match (cop, from.bits().cmp(&to.bits())) {
                    (_, std::cmp::Ordering::Equal) => a,
                    (ConvOp::Uext, std::cmp::Ordering::Less) => self.b.ins().uextend(to, a),
                    (ConvOp::Sext, std::cmp::Ordering::Less) => self.b.ins().sextend(to, a),
                    (ConvOp::Trunc, std::cmp::Ordering::Greater) => self.b.ins().ireduce(to, a),
                    _ => {
                        return Err(unsupported(n, format!("{op} from {from} to {to}")));
                    }
                };
                self.define_val(n, v)
            }
            Op::Select => {
                let ty = self.result_type(n)?;
                // Any integer condition; Cranelift's select tests it against zero.
                let c = self.operand(n, 0)?;
                let a = self.operand_of(n, 1, ty)?;
                let b = self.operand_of(n, 2, ty)?;
                let v = self.b.ins().select(c, a, b);
                self.define_val(n, v)
            }
            Op::PtrAdd => {
                if self.result_type(n)? != types::I64 {
                    return Err(unsupported(n, "ptradd must produce a 64-bit pointer"));
                }
                let p = self.operand_of(n, 0, types::I64)?;
                let d = self.operand_of(n, 1, types::I64)?;
                let v = self.b.ins().iadd(p, d);
                self.define_val(n, v)
            }
            Op::Load { offset } | Op::ClassLoad { offset, .. } => {
                let ty = self.result_type(n)?;
                let base = self.operand_of(n, 2, types::I64)?;
                let v = self.b.ins().load(ty, mem_flags(), base, offset);
                self.define_val(n, v)
            }
            Op::Store { offset } | Op::ClassStore { offset, .. } => {
                let base = self.operand_of(n, 2, types::I64)?;
                let value = self.operand(n, 3)?;
                self.b.ins().store(mem_flags(), value, base, offset);
                self.define(n, Slot::NoValue)
            }
            Op::Call { func } => self.lower_call(n, func),
            Op::CallDirect { callee, sig } => self.lower_call_direct(n, callee, sig),
            Op::CallIndirect { sig } => self.lower_call_indirect(n, sig),
        }
    }

    /// The Cranelift type of `n`'s result, which must be a float.
    fn float_result(&self, n: NodeId) -> Result<ir::Type, BackendError> {
        let ty = self.result_type(n)?;
        if !ty.is_float() {
            return Err(unsupported(n, format!("{} of type {ty}", self.g.op(n))));
        }
        Ok(ty)
    }

    /// `v`, or the canonical NaN of its type if `v` is a NaN: the LIR's
    /// rule for computed NaNs (see `vssa::FBinOp`), which hardware and
    /// Cranelift leave open.
    fn canonical(&mut self, v: Value) -> Value {
        let f32 = self.vty(v) == types::F32;
        let ins = self.b.ins();
        let nan = if f32 {
            ins.f32const(Ieee32::with_bits(CANONICAL_NAN_F32))
        } else {
            ins.f64const(Ieee64::with_bits(CANONICAL_NAN_F64))
        };
        let uno = self.b.ins().fcmp(FloatCC::Unordered, v, v);
        self.b.ins().select(uno, nan, v)
    }

    /// Division and remainder with the LIR's defined results (`x / 0 = 0`,
    /// `x % 0 = x`, `MIN / -1 = MIN`, `MIN % -1 = 0`). Cranelift's `sdiv`
    /// and `udiv` trap on a zero divisor (and `sdiv` on `MIN / -1`), so the
    /// divisor is replaced by 1 in those cases and the answer selected
    /// after: generated code never traps.
    fn lower_div(&mut self, op: BinOp, ty: ir::Type, a: Value, b: Value) -> Value {
        let zero = self.b.ins().iconst(ty, 0);
        let one = self.b.ins().iconst(ty, 1);
        let is_zero = self.b.ins().icmp(IntCC::Equal, b, zero);
        if matches!(op, BinOp::Udiv | BinOp::Urem) {
            let d = self.b.ins().select(is_zero, one, b);
            return if op == BinOp::Udiv {
                let q = self.b.ins().udiv(a, d);
                self.b.ins().select(is_zero, zero, q)
            } else {
                let r = self.b.ins().urem(a, d);
                self.b.ins().select(is_zero, a, r)
            };
        }
        let m1 = self.b.ins().iconst(ty, const_bits(ty, -1));
        let is_m1 = self.b.ins().icmp(IntCC::Equal, b, m1);
        let either = self.b.ins().bor(is_zero, is_m1);
        let d = self.b.ins().select(either, one, b);
        if op == BinOp::Sdiv {
            // x / 1 = x, so x / -1 is its negation (which wraps for MIN).
            let q = self.b.ins().sdiv(a, d);
            let neg = self.b.ins().ineg(a);
            let q = self.b.ins().select(is_m1, neg, q);
            self.b.ins().select(is_zero, zero, q)
        } else {
            // x % 1 = 0 = x % -1.
            let r = self.b.ins().srem(a, d);
            self.b.ins().select(is_zero, a, r)
        }
    }

    fn lower_fconv(&mut self, n: NodeId, op: FConvOp) -> Result<(), BackendError> {
        let to = self.result_type(n)?;
        let a = self.operand(n, 0)?;
        let from = self.vty(a);
        let from_vssa = self.g.ty(self.input(n, 0)?);
        if !vssa::float::fconv_types_ok(op, from_vssa, self.g.ty(n)) {
            return Err(unsupported(
                n,
                format!("{} from {from} to {to}", self.g.op(n)),
            ));
        }
        let v = match op {
            FConvOp::SToF => {
                let a = if from.bits() < 32 {
                    self.b.ins().sextend(types::I32, a)
                } else {
                    a
                };
                self.b.ins().fcvt_from_sint(to, a)
            }
            FConvOp::UToF => match from.bits() {
                // Zero-extended into a wider signed integer, the value is
                // non-negative and the signed conversion is exact.
                b if b < 32 => {
                    let a = self.b.ins().uextend(types::I32, a);
                    self.b.ins().fcvt_from_sint(to, a)
                }
                32 => {
                    let a = self.b.ins().uextend(types::I64, a);
                    self.b.ins().fcvt_from_sint(to, a)
                }
                _ => self.b.ins().fcvt_from_uint(to, a),
            },
            FConvOp::FToSSat | FConvOp::FToUSat => {
                let signed = op == FConvOp::FToSSat;
                if to.bits() >= 32 {
                    if signed {
                        self.b.ins().fcvt_to_sint_sat(to, a)
                    } else {
                        self.b.ins().fcvt_to_uint_sat(to, a)
                    }
                } else {
                    // Saturate to 32 bits, then clamp to the narrow range
                    // (saturation is monotone, so the result is the same).
                    let bits = to.bits();
                    let wide = if signed {
                        let w = self.b.ins().fcvt_to_sint_sat(types::I32, a);
                        let lo = self.b.ins().iconst(types::I32, -(1i64 << (bits - 1)));
                        let hi = self.b.ins().iconst(types::I32, (1i64 << (bits - 1)) - 1);
                        let w = self.b.ins().smax(w, lo);
                        self.b.ins().smin(w, hi)
                    } else {
                        let w = self.b.ins().fcvt_to_uint_sat(types::I32, a);
                        let hi = self.b.ins().iconst(types::I32, (1i64 << bits) - 1);
                        self.b.ins().umin(w, hi)
                    };
                    self.b.ins().ireduce(to, wide)
                }
            }
            FConvOp::Promote => {
                let v = self.b.ins().fpromote(types::F64, a);
                self.canonical(v)
            }
            FConvOp::Demote => {
                let v = self.b.ins().fdemote(types::F32, a);
                self.canonical(v)
            }
            FConvOp::Bitcast => self.b.ins().bitcast(to, MemFlagsData::new(), a),
        };
        self.define_val(n, v)
    }

    /// The range (and exactness) test of `vssa::Op::FFits`, in `F64`: an
    /// `F32` widens exactly, and the bounds are powers of two, so every
    /// comparison is exact. NaN fails the ordered comparisons.
    fn lower_ffits(&mut self, n: NodeId, op: FitsOp, bits: u8) -> Result<(), BackendError> {
        if self.g.ty(n) != Type::I8 || !vssa::float::fits_bits_ok(bits) {
            return Err(unsupported(
                n,
                format!("{} of type {}", self.g.op(n), self.g.ty(n)),
            ));
        }
        let a = self.operand(n, 0)?;
        let x = match self.vty(a) {
            types::F32 => self.b.ins().fpromote(types::F64, a),
            types::F64 => a,
            other => return Err(unsupported(n, format!("{} of {other}", self.g.op(n)))),
        };
        let (lo, hi) = fits_bounds(op, bits);
        let t = self.b.ins().trunc(x);
        let lo = self.b.ins().f64const(lo);
        let hi = self.b.ins().f64const(hi);
        let above = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, t, lo);
        let below = self.b.ins().fcmp(FloatCC::LessThan, t, hi);
        let mut v = self.b.ins().band(above, below);
        if matches!(op, FitsOp::ExactS | FitsOp::ExactU) {
            let whole = self.b.ins().fcmp(FloatCC::Equal, t, x);
            v = self.b.ins().band(v, whole);
        }
        self.define_val(n, v)
    }

    /// Returns every value of `ret` (input 2 on), checked against the
    /// graph's signature.
    fn lower_typed_return(&mut self, ret: NodeId, at: usize) -> Result<(), BackendError> {
        let sig = self.b.func.signature.clone();
        let values = self.g.arity(ret).saturating_sub(2);
        if values != sig.returns.len() {
            return Err(unsupported(
                ret,
                format!(
                    "returns {values} values, the signature has {} results",
                    sig.returns.len()
                ),
            ));
        }
        let mut vals = Vec::with_capacity(values);
        for (k, r) in sig.returns.iter().enumerate() {
            let x = self.input(ret, 2 + k)?;
            let v = self.value_at(ret, x, at)?;
            if self.vty(v) != r.value_type {
                return Err(unsupported(
                    ret,
                    format!(
                        "result {k} is {}, the signature says {}",
                        self.vty(v),
                        r.value_type
                    ),
                ));
            }
            vals.push(v);
        }
        self.b.ins().return_(&vals);
        Ok(())
    }

    fn lower_proj(&mut self, n: NodeId, index: u32) -> Result<(), BackendError> {
        let src = self.input(n, 0)?;
        match (self.g.op(src), index) {
            (Op::Start, 0 | 1) | (Op::If, _) => self.define(n, Slot::NoValue),
            (op, 0) if op.is_call() => self.define(n, Slot::NoValue),
            (Op::Start, i) if self.g.signature().is_some() => {
                let params = self.b.block_params(self.blocks[0]);
                let Some(&v) = params.get(i as usize - 2) else {
                    return Err(unsupported(
                        n,
                        format!("parameter {} is not in the signature", i - 2),
                    ));
                };
                if self.result_type(n)? != self.vty(v) {
                    return Err(unsupported(
                        n,
                        format!("parameter {} is {} in the signature", i - 2, self.vty(v)),
                    ));
                }
                // Parameters are available everywhere: defined in the entry.
                self.define(n, Slot::Val { v, block: 0 })
            }
            (Op::Start, 2) => {
                if self.result_type(n)? != types::I64 {
                    return Err(unsupported(n, "the context parameter must be a pointer"));
                }
                let v = self.b.block_params(self.blocks[0])[0];
                // The parameter is available everywhere: define it in the entry.
                self.define(n, Slot::Val { v, block: 0 })
            }
            (Op::Start, _) => Err(unsupported(
                n,
                "the entry takes one parameter (the context pointer)",
            )),
            (op, k) if op.is_call() => {
                match self.slots[src.index()] {
                    Slot::Call { block } if self.available(block, self.cur) => {}
                    _ => return Err(BackendError::NotAvailable { node: src, user: n }),
                }
                let result = self
                    .call_results
                    .get(&src)
                    .and_then(|r| r.get(k as usize - 1))
                    .copied();
                let Some(v) = result else {
                    return Err(unsupported(
                        n,
                        format!("the call ({op}) has no result {}", k - 1),
                    ));
                };
                let ty = self.result_type(n)?;
                if self.vty(v) != ty {
                    return Err(unsupported(
                        n,
                        format!("result {} of {op} is {}, not {ty}", k - 1, self.vty(v)),
                    ));
                }
                self.define_val(n, v)
            }
            (other, _) => Err(unsupported(n, format!("projection {index} of {other}"))),
        }
    }

    fn lower_call(&mut self, n: NodeId, func: u32) -> Result<(), BackendError> {
        let hosts = self.hosts;
        let host = hosts.get(func as usize).ok_or(BackendError::HostIndex {
            node: n,
            func,
            len: hosts.len(),
        })?;
        let bad = |reason: String| BackendError::HostSignature {
            node: n,
            func,
            reason,
        };
        let sig = host
            .signature(self.call_conv)
            .map_err(|t| bad(format!("{}: type {t} cannot cross a call", host.name)))?;
        let nargs = self.g.arity(n).saturating_sub(2);
        if nargs != host.params.len() {
            return Err(bad(format!(
                "{} takes {} arguments, the call passes {nargs}",
                host.name,
                host.params.len()
            )));
        }
        let mut args = Vec::with_capacity(nargs);
        for (k, p) in sig.params.iter().take(nargs).enumerate() {
            let v = self.operand(n, 2 + k)?;
            if self.vty(v) != p.value_type {
                return Err(bad(format!(
                    "{} argument {k} is {}, the call passes {}",
                    host.name,
                    p.value_type,
                    self.vty(v)
                )));
            }
            args.push(v);
        }
        let callee = match self.host_sigs[func as usize] {
            Some(r) => r,
            None => {
                // Named by its number, not its address: the code carries a
                // relocation ("host function `func`") that placing it
                // fills in, so a stored copy runs in another process.
                let signature = self.b.import_signature(sig);
                let name = self
                    .b
                    .func
                    .declare_imported_user_function(UserExternalName::new(HOST_NAMESPACE, func));
                let r = self.b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: false,
                    patchable: false,
                });
                self.host_sigs[func as usize] = Some(r);
                r
            }
        };
        if host.out_results.is_empty() {
            let inst = self.b.ins().call(callee, &args);
            let results = self.b.inst_results(inst).to_vec();
            return self.define_call(n, results);
        }
        // Several results: one 8-byte slot each, in this frame.
        let count = host.out_results.len() as u32;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * count,
            3,
        ));
        let out = self.b.ins().stack_addr(types::I64, slot, 0);
        args.push(out);
        self.b.ins().call(callee, &args);
        let mut results = Vec::with_capacity(count as usize);
        for (k, &t) in host.out_results.iter().enumerate() {
            let ty = clif_type(t).ok_or_else(|| bad(format!("result of type {t}")))?;
            let v = self.b.ins().load(ty, mem_flags(), out, 8 * k as i32);
            results.push(v);
        }
        self.define_call(n, results)
    }

    fn define_call(&mut self, n: NodeId, results: Vec<Value>) -> Result<(), BackendError> {
        let block = self.cur as u32;
        self.define(n, Slot::Call { block })?;
        self.call_results.insert(n, results);
        Ok(())
    }

    /// The arguments of call `n` (its inputs from `from`), checked against
    /// the machine signature `sig`.
    fn call_args(
        &self,
        n: NodeId,
        from: usize,
        sig: &ir::Signature,
    ) -> Result<Vec<Value>, BackendError> {
        let nargs = self.g.arity(n).saturating_sub(from);
        if nargs != sig.params.len() {
            return Err(unsupported(
                n,
                format!(
                    "passes {nargs} arguments, the signature has {}",
                    sig.params.len()
                ),
            ));
        }
        let mut args = Vec::with_capacity(nargs);
        for (k, p) in sig.params.iter().enumerate() {
            args.push(self.operand_of(n, from + k, p.value_type)?);
        }
        Ok(args)
    }

    /// A direct call of compiled function `callee` (a relocation the
    /// embedder's function table fills in).
    fn lower_call_direct(
        &mut self,
        n: NodeId,
        callee: u32,
        sig: Signature,
    ) -> Result<(), BackendError> {
        let msig = typed_signature(sig, self.call_conv);
        let args = self.call_args(n, 2, &msig)?;
        let f = match self.callees.get(&callee) {
            Some(&f) => f,
            None => {
                let signature = self.b.import_signature(msig);
                let name = self
                    .b
                    .func
                    .declare_imported_user_function(UserExternalName::new(
                        FUNCTION_NAMESPACE,
                        callee,
                    ));
                let f = self.b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: false,
                    patchable: false,
                });
                self.callees.insert(callee, f);
                f
            }
        };
        let inst = self.b.ins().call(f, &args);
        let results = self.b.inst_results(inst).to_vec();
        self.define_call(n, results)
    }

    /// An indirect call through the address in input 2.
    fn lower_call_indirect(&mut self, n: NodeId, sig: Signature) -> Result<(), BackendError> {
        let msig = typed_signature(sig, self.call_conv);
        let target = self.operand_of(n, 2, types::I64)?;
        let args = self.call_args(n, 3, &msig)?;
        let sref = match self.indirect_sigs.get(&sig) {
            Some(&r) => r,
            None => {
                let r = self.b.import_signature(msig);
                self.indirect_sigs.insert(sig, r);
                r
            }
        };
        let inst = self.b.ins().call_indirect(sref, target, &args);
        let results = self.b.inst_results(inst).to_vec();
        self.define_call(n, results)
    }
}
