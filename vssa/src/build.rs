//! The typed builder API that front-ends use.
//!
//! Each method computes the result type from its operands and goes through
//! [`Graph::build`], so every node a front-end makes is simplified and
//! value-numbered at construction. Nothing here compiles anything: the
//! embedder decides when to hand the finished graph to the pipeline.

use crate::graph::{Graph, GraphError, NodeId};
use crate::op::{BinOp, CmpOp, ConvOp, FBinOp, FCmpOp, FConvOp, FUnOp, FitsOp, Op, UnOp};
use crate::sig::Signature;
use crate::types::Type;

/// The projections of `Start`: what the entry block begins with.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub start: NodeId,
    pub ctrl: NodeId,
    pub mem: NodeId,
}

type R = Result<NodeId, GraphError>;

impl Graph {
    /// The entry: `Start` and its control and memory projections.
    pub fn entry(&mut self) -> Result<Entry, GraphError> {
        let start = self.build(Op::Start, Type::Tuple, &[])?;
        let ctrl = self.build(Op::Proj { index: 0 }, Type::Ctrl, &[start])?;
        let mem = self.build(Op::Proj { index: 1 }, Type::Mem, &[start])?;
        Ok(Entry { start, ctrl, mem })
    }

    /// Function parameter `index` of type `ty`.
    pub fn param(&mut self, start: NodeId, index: u32, ty: Type) -> R {
        self.build(Op::Proj { index: 2 + index }, ty, &[start])
    }

    /// An integer or pointer constant. Host values known at compile time
    /// (addresses, limits, flags) enter the graph this way and end up as
    /// immediate operands.
    pub fn iconst(&mut self, ty: Type, value: i64) -> R {
        self.build(Op::Const { value }, ty, &[])
    }

    /// A float constant of type `F64` with exactly the bits of `value`.
    pub fn f64const(&mut self, value: f64) -> R {
        self.build(
            Op::Const {
                value: crate::float::bits_of_f64(value),
            },
            Type::F64,
            &[],
        )
    }

    /// A float constant of type `F32` with exactly the bits of `value`.
    pub fn f32const(&mut self, value: f32) -> R {
        self.build(
            Op::Const {
                value: crate::float::bits_of_f32(value),
            },
            Type::F32,
            &[],
        )
    }

    /// Float `a op b`; the type is `a`'s.
    pub fn fbin(&mut self, op: FBinOp, a: NodeId, b: NodeId) -> R {
        let ty = self.ty(self.resolve(a));
        self.build(Op::FBin(op), ty, &[a, b])
    }

    /// Float `op a`; the type is `a`'s.
    pub fn fun(&mut self, op: FUnOp, a: NodeId) -> R {
        let ty = self.ty(self.resolve(a));
        self.build(Op::FUn(op), ty, &[a])
    }

    /// Float `a cmp b` as an `I8` 0 or 1.
    pub fn fcmp(&mut self, op: FCmpOp, a: NodeId, b: NodeId) -> R {
        self.build(Op::FCmp(op), Type::I8, &[a, b])
    }

    /// Converts `a` to `ty` (see [`FConvOp`]).
    pub fn fconv(&mut self, op: FConvOp, ty: Type, a: NodeId) -> R {
        self.build(Op::FConv(op), ty, &[a])
    }

    /// 1 if float `a` converts to a `bits`-bit integer as `op` says, else 0.
    pub fn ffits(&mut self, op: FitsOp, bits: u8, a: NodeId) -> R {
        self.build(Op::FFits { op, bits }, Type::I8, &[a])
    }

    /// `a op b`; the type is `a`'s.
    pub fn bin(&mut self, op: BinOp, a: NodeId, b: NodeId) -> R {
        let ty = self.ty(self.resolve(a));
        self.build(Op::Bin(op), ty, &[a, b])
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> R {
        self.bin(BinOp::Add, a, b)
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> R {
        self.bin(BinOp::Sub, a, b)
    }

    /// `op a`; the type is `a`'s.
    pub fn un(&mut self, op: UnOp, a: NodeId) -> R {
        let ty = self.ty(self.resolve(a));
        self.build(Op::Un(op), ty, &[a])
    }

    /// `a cmp b` as an `I8` 0 or 1.
    pub fn cmp(&mut self, op: CmpOp, a: NodeId, b: NodeId) -> R {
        self.build(Op::Cmp(op), Type::I8, &[a, b])
    }

    /// Widen or narrow `a` to `ty`.
    pub fn conv(&mut self, op: ConvOp, ty: Type, a: NodeId) -> R {
        self.build(Op::Conv(op), ty, &[a])
    }

    /// `cond ? a : b`.
    pub fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> R {
        let ty = self.ty(self.resolve(a));
        self.build(Op::Select, ty, &[cond, a, b])
    }

    /// `ptr + bytes` (an `I64` byte count).
    pub fn ptr_add(&mut self, ptr: NodeId, bytes: NodeId) -> R {
        self.build(Op::PtrAdd, Type::Ptr, &[ptr, bytes])
    }

    /// A merge of forward control edges.
    pub fn region(&mut self, preds: &[NodeId]) -> R {
        self.build(Op::Region, Type::Ctrl, preds)
    }

    /// A loop header entered from `entry`; close it with
    /// [`Graph::set_back_input`] once the body is built.
    pub fn loop_header(&mut self, key: u64, entry: NodeId) -> R {
        self.build(Op::Loop { key }, Type::Ctrl, &[entry])
    }

    /// A phi on a forward `Region`: one value per predecessor.
    pub fn phi(&mut self, region: NodeId, ty: Type, values: &[NodeId]) -> R {
        let mut inputs = Vec::with_capacity(values.len() + 1);
        inputs.push(region);
        inputs.extend_from_slice(values);
        self.build(Op::Phi { key: 0 }, ty, &inputs)
    }

    /// A phi on a `Loop` with its entry value; `key` tells the loop's phis
    /// apart. Close it with [`Graph::set_back_input`].
    pub fn loop_phi(&mut self, lp: NodeId, key: u64, ty: Type, entry: NodeId) -> R {
        self.build(Op::Phi { key }, ty, &[lp, entry])
    }

    /// A branch; returns the (taken when `cond != 0`, not taken) controls.
    pub fn branch(&mut self, ctrl: NodeId, cond: NodeId) -> Result<(NodeId, NodeId), GraphError> {
        let iff = self.build(Op::If, Type::Tuple, &[ctrl, cond])?;
        let t = self.build(Op::Proj { index: 0 }, Type::Ctrl, &[iff])?;
        let f = self.build(Op::Proj { index: 1 }, Type::Ctrl, &[iff])?;
        Ok((t, f))
    }

    /// Reads a `ty` at `base + offset` from memory state `mem`.
    pub fn load(&mut self, ctrl: NodeId, mem: NodeId, base: NodeId, offset: i32, ty: Type) -> R {
        self.build(Op::Load { offset }, ty, &[ctrl, mem, base])
    }

    /// Writes `value` at `base + offset`; returns the new memory state.
    pub fn store(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        base: NodeId,
        offset: i32,
        value: NodeId,
    ) -> R {
        self.build(Op::Store { offset }, Type::Mem, &[ctrl, mem, base, value])
    }

    /// Reads a `ty` at `base + offset` in alias class `class` (see
    /// [`crate::alias`]); class 0 is [`Graph::load`].
    pub fn load_class(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        base: NodeId,
        offset: i32,
        ty: Type,
        class: u32,
    ) -> R {
        self.build(Op::load(offset, class), ty, &[ctrl, mem, base])
    }

    /// Writes `value` at `base + offset` in alias class `class`; class 0 is
    /// [`Graph::store`]. Returns the new memory state.
    pub fn store_class(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        base: NodeId,
        offset: i32,
        value: NodeId,
        class: u32,
    ) -> R {
        let op = Op::store(offset, class);
        self.build(op, Type::Mem, &[ctrl, mem, base, value])
    }

    /// Calls host function `func`; returns the new memory state and, if
    /// `ret` is given, the result.
    pub fn call(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        func: u32,
        args: &[NodeId],
        ret: Option<Type>,
    ) -> Result<(NodeId, Option<NodeId>), GraphError> {
        let mut inputs = Vec::with_capacity(args.len() + 2);
        inputs.push(ctrl);
        inputs.push(mem);
        inputs.extend_from_slice(args);
        let call = self.build(Op::Call { func }, Type::Tuple, &inputs)?;
        let mem = self.build(Op::Proj { index: 0 }, Type::Mem, &[call])?;
        let result = match ret {
            Some(ty) => Some(self.build(Op::Proj { index: 1 }, ty, &[call])?),
            None => None,
        };
        Ok((mem, result))
    }

    /// Calls host function `func` whose table entry returns `results`;
    /// returns the new memory state and one node per result (`Proj 1..`).
    pub fn call_host(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        func: u32,
        args: &[NodeId],
        results: &[Type],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        self.call_op(Op::Call { func }, &[ctrl, mem], args, results)
    }

    /// Calls compiled function `callee` of signature `sig` (see
    /// [`Op::CallDirect`]); returns the new memory and the results.
    pub fn call_direct(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        callee: u32,
        sig: Signature,
        args: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let results = sig.results();
        self.call_op(Op::CallDirect { callee, sig }, &[ctrl, mem], args, &results)
    }

    /// Calls the compiled function at `target` of signature `sig` (see
    /// [`Op::CallIndirect`]); returns the new memory and the results.
    pub fn call_indirect(
        &mut self,
        ctrl: NodeId,
        mem: NodeId,
        target: NodeId,
        sig: Signature,
        args: &[NodeId],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let results = sig.results();
        self.call_op(
            Op::CallIndirect { sig },
            &[ctrl, mem, target],
            args,
            &results,
        )
    }

    /// A call node of `op` on `head` then `args`, with its projections.
    fn call_op(
        &mut self,
        op: Op,
        head: &[NodeId],
        args: &[NodeId],
        results: &[Type],
    ) -> Result<(NodeId, Vec<NodeId>), GraphError> {
        let mut inputs = Vec::with_capacity(args.len() + head.len());
        inputs.extend_from_slice(head);
        inputs.extend_from_slice(args);
        let call = self.build(op, Type::Tuple, &inputs)?;
        let mem = self.build(Op::Proj { index: 0 }, Type::Mem, &[call])?;
        let mut out = Vec::with_capacity(results.len());
        for (i, &ty) in results.iter().enumerate() {
            out.push(self.build(
                Op::Proj {
                    index: 1 + i as u32,
                },
                ty,
                &[call],
            )?);
        }
        Ok((mem, out))
    }

    /// The guest state at a deoptimization point: resume point `resume`,
    /// memory `mem` and live slot values `values` (see [`Op::FrameState`]).
    pub fn frame_state(&mut self, resume: u64, mem: NodeId, values: &[NodeId]) -> R {
        let mut inputs = Vec::with_capacity(values.len() + 1);
        inputs.push(mem);
        inputs.extend_from_slice(values);
        self.build(Op::FrameState { resume }, Type::Frame, &inputs)
    }

    /// The frame of inlined code at resume point `resume`, whose caller's
    /// interpreter frame resumes from `caller` (see [`Op::InlinedFrame`]).
    pub fn inlined_frame(
        &mut self,
        resume: u64,
        mem: NodeId,
        caller: NodeId,
        values: &[NodeId],
    ) -> R {
        let mut inputs = Vec::with_capacity(values.len() + 2);
        inputs.push(mem);
        inputs.push(caller);
        inputs.extend_from_slice(values);
        self.build(Op::InlinedFrame { resume }, Type::Frame, &inputs)
    }

    /// A frame slot holding the boxed guest value `v` (see [`Op::Boxed`]).
    pub fn boxed(&mut self, v: NodeId) -> R {
        let ty = self.ty(v);
        self.build(Op::Boxed, ty, &[v])
    }

    /// A frame slot holding an object of guest class `class` to allocate on
    /// deopt, with field values `fields` (see [`Op::Materialize`]).
    pub fn materialize(&mut self, class: u32, fields: &[NodeId]) -> R {
        self.build(Op::Materialize { class }, Type::Ptr, fields)
    }

    /// Goes on when `cond != 0`, else deoptimizes to `frame`; returns the
    /// control that goes on (see [`Op::Guard`]).
    pub fn guard(&mut self, ctrl: NodeId, cond: NodeId, frame: NodeId, reason: u32) -> R {
        self.build(Op::Guard { reason }, Type::Ctrl, &[ctrl, cond, frame])
    }

    /// Leaves the function with `value`.
    pub fn ret(&mut self, ctrl: NodeId, mem: NodeId, value: NodeId) -> R {
        self.build(Op::Return, Type::Ctrl, &[ctrl, mem, value])
    }

    /// Leaves a function with a signature, returning `values` (one per result).
    pub fn ret_values(&mut self, ctrl: NodeId, mem: NodeId, values: &[NodeId]) -> R {
        let mut inputs = Vec::with_capacity(values.len() + 2);
        inputs.push(ctrl);
        inputs.push(mem);
        inputs.extend_from_slice(values);
        self.build(Op::Return, Type::Ctrl, &inputs)
    }

    /// Builds the `End` over all returns and makes it the graph's sink.
    pub fn finish(&mut self, returns: &[NodeId]) -> R {
        let end = self.build(Op::End, Type::Ctrl, returns)?;
        self.set_end(end);
        Ok(end)
    }
}
