//! The JIT: compiles lowered functions to native code in this process.
//!
//! A [`Jit`] owns one Cranelift `JITModule` (the executable memory) and the
//! reusable compilation contexts. [`Jit::compile`] lowers, compiles and
//! finalizes one graph and hands back a [`CompiledCode`] handle; the code
//! lives as long as the `Jit` does, and dropping the `Jit` frees it.
//! [`Jit::compile_owned`] instead puts the function in memory of its own
//! ([`OwnedCode`]), freed when that is dropped: what a code cache that
//! evicts unit by unit needs.

use crate::error::BackendError;
use crate::host::HostFn;
use crate::image::{
    CodeImage, CodeReloc, RelocKind, RelocTarget, FUNCTION_NAMESPACE, HOST_NAMESPACE,
};
use crate::lower::{entry_signature, function_signature, lower_with};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::ExternalName;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetFrontendConfig};
use cranelift_codegen::print_errors::pretty_verifier_error;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::FinalizedRelocTarget;
use cranelift_codegen::{ir, CodegenError, Context};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{
    default_libcall_names, FuncId, Linkage, Module, ModuleReloc, ModuleRelocTarget,
};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vssa::Graph;
use vssa_schedule::Schedule;

/// How a [`Jit`] compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitOptions {
    /// Run Cranelift's IR verifier before compiling each function. It
    /// catches backend bugs; it costs compile time, so it defaults to on
    /// only in debug builds.
    pub verify: bool,
    /// Keep the Cranelift IR text of each function in its [`CompiledCode`]
    /// (for `--dump-clif`).
    pub capture_clif: bool,
    /// Functions whose loops nest deeper than this (by the schedule's
    /// `loop_depth`) skip Cranelift's e-graph optimizer: its loop-invariant
    /// code motion costs time proportional to the loop depth per
    /// instruction, i.e. quadratic time for very deep nests (100 000 nested
    /// loops: 17 s with it, 0.7 s without, in a release build).
    pub max_optimized_loop_depth: u32,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            verify: cfg!(debug_assertions),
            capture_clif: false,
            max_optimized_loop_depth: 1000,
        }
    }
}

/// Where compile time went, and what came out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Schedule + graph to Cranelift IR.
    pub lower: Duration,
    /// Cranelift (verify, optimize, isel, regalloc, emit) and finalization.
    pub compile: Duration,
    /// Bytes of machine code.
    pub code_size: usize,
    /// Cranelift IR size before optimization.
    pub clif_insts: usize,
    pub clif_blocks: usize,
    /// Whether Cranelift's optimizer ran (see
    /// [`JitOptions::max_optimized_loop_depth`]).
    pub optimized: bool,
}

/// Unique ids tie each [`CompiledCode`] to the [`Jit`] that made it.
static NEXT_JIT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled graph: a handle to native code owned by a [`Jit`].
///
/// The handle does not keep the code alive: it is valid while the `Jit`
/// that compiled it lives. [`Jit::call`] checks that pairing;
/// [`CompiledCode::call`] leaves it to the caller.
#[derive(Clone, Debug)]
pub struct CompiledCode {
    jit: u64,
    id: FuncId,
    ptr: *const u8,
    stats: CompileStats,
    clif: Option<String>,
}

impl CompiledCode {
    pub fn func_id(&self) -> FuncId {
        self.id
    }

    /// The entry point's address.
    pub fn code_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// The Cranelift IR as lowered (before Cranelift's optimizations), if
    /// [`JitOptions::capture_clif`] was set.
    pub fn clif(&self) -> Option<&str> {
        self.clif.as_deref()
    }

    /// Runs the compiled graph on context `ctx` and returns its result.
    ///
    /// # Safety
    ///
    /// * The [`Jit`] that compiled this code is alive (dropping it frees
    ///   the code).
    /// * `ctx` points to memory laid out as the graph was built for: every
    ///   load and store the graph performs at `ctx` plus an offset is in
    ///   bounds, valid for that access, and not aliased by a live Rust
    ///   reference for the duration of the call.
    /// * Every host function the graph calls is, at its recorded address,
    ///   an `extern "C"` function with the [`HostFn`]'s signature, and its
    ///   own preconditions hold for the arguments the graph passes.
    pub unsafe fn call(&self, ctx: *mut u8) -> u32 {
        // SAFETY: `ptr` is the finalized entry of a function compiled with
        // `entry_signature(isa.default_call_conv())`, which is this
        // platform's C ABI for `fn(*mut u8) -> u32`; the code is alive and
        // `ctx`/host functions are valid by this function's contract.
        let f: extern "C" fn(*mut u8) -> u32 = unsafe { std::mem::transmute(self.ptr) };
        f(ctx)
    }
}

/// A native-code compiler for scheduled vssa graphs.
pub struct Jit {
    /// The memory [`Jit::compile`] puts code in. `ManuallyDrop` so that
    /// `Drop` can move it into `free_memory`.
    module: ManuallyDrop<JITModule>,
    compiler: Compiler,
    id: u64,
    /// The address of each compiled function direct calls name
    /// ([`Jit::define_function`]).
    functions: HashMap<u32, usize>,
}

/// Everything a compilation needs but the module it compiles into, so that
/// the same compiler serves the JIT's own module and fresh ones
/// ([`Jit::compile_owned`]).
struct Compiler {
    /// The ISA every module of this JIT compiles for.
    isa: OwnedTargetIsa,
    /// The same ISA with `opt_level=none`, for very deep loop nests.
    unoptimized: OwnedTargetIsa,
    ctx: Context,
    fctx: FunctionBuilderContext,
    options: JitOptions,
    /// Disambiguates repeated function names.
    compiled: u64,
}

/// Machine code that owns its executable memory: one function, freed when
/// this is dropped. Share it with `Arc` to keep it alive while
/// anything may still call it (see [`crate::CodeCache`]).
pub struct OwnedCode {
    /// `ManuallyDrop` so that `Drop` can move it into `free_memory`.
    module: ManuallyDrop<JITModule>,
    code: CompiledCode,
    /// The code before it was placed: what a persistent cache stores.
    image: CodeImage,
}

impl OwnedCode {
    pub fn stats(&self) -> &CompileStats {
        &self.code.stats
    }

    /// The Cranelift IR as lowered, if [`JitOptions::capture_clif`] was set.
    pub fn clif(&self) -> Option<&str> {
        self.code.clif()
    }

    /// The entry point's address.
    pub fn code_ptr(&self) -> *const u8 {
        self.code.ptr
    }

    /// The code as compiled, its relocations by name (what
    /// [`Jit::load_owned`] places again, in this process or another).
    pub fn image(&self) -> &CodeImage {
        &self.image
    }

    /// Runs the code on context `ctx` and returns its result.
    ///
    /// # Safety
    ///
    /// As [`CompiledCode::call`], except that the code is alive as long as
    /// `self` is, so that condition always holds.
    pub unsafe fn call(&self, ctx: *mut u8) -> u32 {
        // SAFETY: `self.module` holds the code's memory and is borrowed for
        // the call; the rest is the caller's contract.
        unsafe { self.code.call(ctx) }
    }
}

// SAFETY: an `OwnedCode` is finished machine code and the module that
// owns its memory. Its methods only read what never changes after
// compilation (the entry address, stats, IR text); the module is touched
// only by `Drop`, which has the value to itself. So it may be moved to, and
// shared with, another thread: a compile thread hands its code to the
// thread that runs it.
unsafe impl Send for OwnedCode {}
// SAFETY: as for `Send` above: no `&self` method mutates anything.
unsafe impl Sync for OwnedCode {}

impl std::fmt::Debug for OwnedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedCode")
            .field("ptr", &self.code.ptr)
            .field("code_size", &self.code.stats.code_size)
            .finish()
    }
}

impl Drop for OwnedCode {
    fn drop(&mut self) {
        // SAFETY: `self.module` is never touched again after this take.
        let module = unsafe { ManuallyDrop::take(&mut self.module) };
        // SAFETY: `OwnedCode::call` borrows `self`, so no call of this code
        // is running, and none can start once it is dropped.
        unsafe { module.free_memory() };
    }
}

impl Jit {
    /// A JIT for the host machine (`cranelift_native`), optimizing for speed.
    pub fn new(options: JitOptions) -> Result<Jit, BackendError> {
        let isa = host_isa(options.verify, "speed")?;
        let unoptimized = host_isa(options.verify, "none")?;
        if isa.pointer_bits() != 64 {
            return Err(BackendError::Isa(format!(
                "vssa needs 64-bit pointers, the host has {}",
                isa.pointer_bits()
            )));
        }
        let module = new_module(&isa);
        Ok(Jit {
            compiler: Compiler {
                isa,
                ctx: module.make_context(),
                unoptimized,
                fctx: FunctionBuilderContext::new(),
                options,
                compiled: 0,
            },
            module: ManuallyDrop::new(module),
            id: NEXT_JIT_ID.fetch_add(1, Ordering::Relaxed),
            functions: HashMap::new(),
        })
    }

    pub fn options(&self) -> JitOptions {
        self.compiler.options
    }

    /// Calling convention and pointer width of the generated code.
    pub fn frontend_config(&self) -> TargetFrontendConfig {
        self.compiler.isa.frontend_config()
    }

    /// The Cranelift IR `g` lowers to, without compiling it (`--dump-clif`).
    pub fn clif_text(
        &mut self,
        g: &Graph,
        s: &Schedule,
        hosts: &[HostFn],
        name: &str,
    ) -> Result<String, BackendError> {
        let config = self.frontend_config();
        let func = lower_with(g, s, hosts, config, name, &mut self.compiler.fctx)?;
        Ok(func.display().to_string())
    }

    /// Lowers, compiles and finalizes `g` as scheduled by `s`; `name` labels
    /// the function (suffixed if already used in this JIT). The code lives
    /// in this JIT's memory until the JIT is dropped.
    pub fn compile(
        &mut self,
        g: &Graph,
        s: &Schedule,
        hosts: &[HostFn],
        name: &str,
    ) -> Result<CompiledCode, BackendError> {
        let (mut code, _) =
            self.compiler
                .compile(&mut self.module, g, s, hosts, &self.functions, name)?;
        code.jit = self.id;
        Ok(code)
    }

    /// [`Jit::compile`] into executable memory of its own, freed when the
    /// returned [`OwnedCode`] is dropped, whatever happens to this JIT: a
    /// code cache frees units one by one.
    pub fn compile_owned(
        &mut self,
        g: &Graph,
        s: &Schedule,
        hosts: &[HostFn],
        name: &str,
    ) -> Result<OwnedCode, BackendError> {
        let mut module = new_module(&self.compiler.isa);
        match self
            .compiler
            .compile(&mut module, g, s, hosts, &self.functions, name)
        {
            Ok((code, image)) => Ok(OwnedCode {
                module: ManuallyDrop::new(module),
                code,
                image,
            }),
            Err(e) => {
                // SAFETY: nothing compiled into `module` was handed out.
                unsafe { module.free_memory() };
                Err(e)
            }
        }
    }

    /// Places a compiled image (from [`OwnedCode::image`], possibly of
    /// another process, e.g. read from a persistent code cache) in
    /// executable memory of its own, its relocations filled in for
    /// `hosts`. Nothing is compiled. The image must have been compiled by
    /// a JIT with the same [`Jit::target_id`] for `hosts`: the caller
    /// checks that (a cache entry stores the id); what is checked here is
    /// that every relocation is inside the code and names a host that
    /// exists, so a damaged image is an error, never a stray write.
    pub fn load_owned(
        &mut self,
        image: &CodeImage,
        hosts: &[HostFn],
        name: &str,
    ) -> Result<OwnedCode, BackendError> {
        let t = Instant::now();
        let mut module = new_module(&self.compiler.isa);
        let symbol = self.compiler.unique_name(&module, name);
        let sig = entry_signature(self.compiler.isa.default_call_conv());
        let placed = module
            .declare_function(&symbol, Linkage::Local, &sig)
            .map_err(|e| BackendError::Codegen(e.to_string()))
            .and_then(|id| Ok((id, link(&mut module, id, image, hosts, &self.functions)?)));
        match placed {
            Ok((id, ptr)) => Ok(OwnedCode {
                module: ManuallyDrop::new(module),
                code: CompiledCode {
                    jit: 0,
                    id,
                    ptr,
                    stats: CompileStats {
                        compile: t.elapsed(),
                        code_size: image.bytes.len(),
                        optimized: true,
                        ..CompileStats::default()
                    },
                    clif: None,
                },
                image: image.clone(),
            }),
            Err(e) => {
                // SAFETY: nothing placed in `module` was handed out.
                unsafe { module.free_memory() };
                Err(e)
            }
        }
    }

    /// Makes `addr` the address of compiled function `id`: what code
    /// compiled or placed by this JIT from now on calls for
    /// `CallDirect { callee: id }` (the relocation is filled in when the
    /// code is placed, so stored code links to the functions of the
    /// process that places it). The function must have the signature the
    /// calls name and stay alive as long as code calling it may run.
    pub fn define_function(&mut self, id: u32, addr: *const u8) {
        self.functions.insert(id, addr as usize);
    }

    /// What the machine code this JIT makes for `hosts` depends on besides
    /// the graph: the target (architecture, CPU features, Cranelift's
    /// flags), vssa's version and options, and the host functions' names
    /// and signatures (code calls host `i` by number). Code is reused
    /// across processes only between equal ids.
    pub fn target_id(&self, hosts: &[HostFn]) -> [u8; 32] {
        let isa = &self.compiler.isa;
        let mut h = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"vssa code target 1");
        field(env!("CARGO_PKG_VERSION").as_bytes());
        field(isa.triple().to_string().as_bytes());
        field(isa.flags().to_string().as_bytes());
        for f in isa.isa_flags() {
            field(f.to_string().as_bytes());
        }
        let depth = self.compiler.options.max_optimized_loop_depth;
        field(&depth.to_le_bytes());
        for host in hosts {
            field(host.name.as_bytes());
            let params: Vec<String> = host.params.iter().map(|t| t.to_string()).collect();
            field(params.join(",").as_bytes());
            field(
                host.ret
                    .map(|t| t.to_string())
                    .unwrap_or_default()
                    .as_bytes(),
            );
            if !host.out_results.is_empty() {
                let out: Vec<String> = host.out_results.iter().map(|t| t.to_string()).collect();
                field(format!("out {}", out.join(",")).as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Runs `code` on `ctx`, checking that this JIT compiled it (so the
    /// code is alive for the call).
    ///
    /// # Safety
    ///
    /// As [`CompiledCode::call`], except that liveness is checked here.
    pub unsafe fn call(&self, code: &CompiledCode, ctx: *mut u8) -> Result<u32, BackendError> {
        if code.jit != self.id {
            return Err(BackendError::ForeignCode);
        }
        // SAFETY: `code` belongs to `self`, which is borrowed for the call,
        // so its memory is alive; the rest is the caller's contract.
        Ok(unsafe { code.call(ctx) })
    }
}

/// Places `image` as function `id` of `module`: host addresses written
/// into a copy of the bytes, the other relocations (library routines,
/// offsets in the function) left to the module, which fills them in when
/// it finalizes the memory as executable. Returns the entry's address.
fn link(
    module: &mut JITModule,
    id: FuncId,
    image: &CodeImage,
    hosts: &[HostFn],
    functions: &HashMap<u32, usize>,
) -> Result<*const u8, BackendError> {
    let bad = |why: String| BackendError::Codegen(format!("cannot place code: {why}"));
    let mut bytes = image.bytes.clone();
    let mut relocs = Vec::new();
    for r in &image.relocs {
        let at = r.offset as usize;
        if at.saturating_add(r.kind.width()) > bytes.len() {
            return Err(bad(format!("relocation at {at} outside the code")));
        }
        let name = match r.target {
            RelocTarget::Host(i) => {
                let host = hosts
                    .get(i as usize)
                    .ok_or_else(|| bad(format!("no host function {i}")))?;
                if r.kind != RelocKind::Abs8 {
                    return Err(bad(format!("host function {i} through {:?}", r.kind)));
                }
                let addr = (host.addr as u64).wrapping_add(r.addend as u64);
                bytes[at..at + 8].copy_from_slice(&addr.to_le_bytes());
                continue;
            }
            RelocTarget::Function(i) => {
                let f = functions
                    .get(&i)
                    .ok_or_else(|| bad(format!("compiled function u{i} is not defined")))?;
                if r.kind != RelocKind::Abs8 {
                    return Err(bad(format!("compiled function u{i} through {:?}", r.kind)));
                }
                let addr = (*f as u64).wrapping_add(r.addend as u64);
                bytes[at..at + 8].copy_from_slice(&addr.to_le_bytes());
                continue;
            }
            RelocTarget::LibCall(lc) => ModuleRelocTarget::LibCall(lc),
            RelocTarget::Within(o) => {
                if o as usize > bytes.len() {
                    return Err(bad(format!("offset {o} outside the code")));
                }
                ModuleRelocTarget::FunctionOffset(id, o)
            }
        };
        relocs.push(ModuleReloc {
            offset: r.offset,
            kind: r.kind.to_cranelift(),
            name,
            addend: r.addend,
        });
    }
    module
        .define_function_bytes(id, u64::from(image.align.max(1)), &bytes, &relocs)
        .map_err(|e| BackendError::Codegen(e.to_string()))?;
    module
        .finalize_definitions()
        .map_err(|e| BackendError::Codegen(e.to_string()))?;
    Ok(module.get_finalized_function(id))
}

/// A module (executable memory) for `isa`.
fn new_module(isa: &OwnedTargetIsa) -> JITModule {
    JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()))
}

impl Compiler {
    /// Lowers and compiles one function, then places its image in
    /// `module` (as [`Jit::load_owned`] places a stored one). The returned
    /// handle's `jit` id is 0: no [`Jit`] owns the memory yet.
    fn compile(
        &mut self,
        module: &mut JITModule,
        g: &Graph,
        s: &Schedule,
        hosts: &[HostFn],
        functions: &HashMap<u32, usize>,
        name: &str,
    ) -> Result<(CompiledCode, CodeImage), BackendError> {
        let t0 = Instant::now();
        let config = self.isa.frontend_config();
        let func = lower_with(g, s, hosts, config, name, &mut self.fctx)?;
        let lower = t0.elapsed();
        let clif = self
            .options
            .capture_clif
            .then(|| func.display().to_string());
        let clif_insts = func.dfg.num_insts();
        let clif_blocks = func.dfg.num_blocks();

        let t1 = Instant::now();
        let symbol = self.unique_name(module, name);
        let sig = function_signature(g, config.default_call_conv)?;
        let id = module
            .declare_function(&symbol, Linkage::Local, &sig)
            .map_err(|e| BackendError::Codegen(e.to_string()))?;
        self.ctx.func = func;
        let max_depth = s.blocks.iter().map(|b| b.loop_depth).max().unwrap_or(0);
        let optimized = max_depth <= self.options.max_optimized_loop_depth;
        let image = self.emit(optimized);
        module.clear_context(&mut self.ctx);
        let image = image?;
        let code_size = image.bytes.len();
        let ptr = link(module, id, &image, hosts, functions)?;
        Ok((
            CompiledCode {
                jit: 0,
                id,
                ptr,
                stats: CompileStats {
                    lower,
                    compile: t1.elapsed(),
                    code_size,
                    clif_insts,
                    clif_blocks,
                    optimized,
                },
                clif,
            },
            image,
        ))
    }

    /// Compiles `self.ctx.func` (with the unoptimizing ISA unless
    /// `optimized`) into a relocatable image.
    fn emit(&mut self, optimized: bool) -> Result<CodeImage, BackendError> {
        let isa = if optimized {
            &*self.isa
        } else {
            &*self.unoptimized
        };
        if let Err(e) = self.ctx.compile(isa, &mut ControlPlane::default()) {
            return Err(codegen_error(e.func, e.inner));
        }
        let Some(code) = self.ctx.compiled_code() else {
            return Err(BackendError::Codegen("no code was produced".into()));
        };
        let mut relocs = Vec::with_capacity(code.buffer.relocs().len());
        for r in code.buffer.relocs() {
            let unsupported = || {
                BackendError::Codegen(format!(
                    "relocation {} to {} is not supported",
                    r.kind,
                    r.target.display(Some(&self.ctx.func.params))
                ))
            };
            let kind = RelocKind::of(r.kind).ok_or_else(unsupported)?;
            let target = match &r.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(name)) => {
                    let name = &self.ctx.func.params.user_named_funcs()[*name];
                    if kind != RelocKind::Abs8 {
                        return Err(unsupported());
                    }
                    match name.namespace {
                        HOST_NAMESPACE => RelocTarget::Host(name.index),
                        FUNCTION_NAMESPACE => RelocTarget::Function(name.index),
                        _ => return Err(unsupported()),
                    }
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(lc)) => {
                    RelocTarget::LibCall(*lc)
                }
                FinalizedRelocTarget::Func(offset) => RelocTarget::Within(*offset),
                _ => return Err(unsupported()),
            };
            relocs.push(CodeReloc {
                offset: r.offset,
                kind,
                target,
                addend: r.addend,
            });
        }
        Ok(CodeImage {
            bytes: code.code_buffer().to_vec(),
            align: code.buffer.alignment.max(1),
            relocs,
        })
    }

    fn unique_name(&mut self, module: &JITModule, name: &str) -> String {
        let mut candidate = name.to_string();
        while module.declarations().get_name(&candidate).is_some() {
            self.compiled += 1;
            candidate = format!("{name}.{}", self.compiled);
        }
        candidate
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        // SAFETY: `self.module` is never touched again after this take.
        let module = unsafe { ManuallyDrop::take(&mut self.module) };
        // SAFETY: `CompiledCode::call` requires the Jit to be alive and
        // `Jit::call` borrows it, so no code of this module runs now or is
        // called later. Without this the module would leak its memory.
        unsafe { module.free_memory() };
    }
}

/// A Cranelift failure as a backend error; verifier errors are printed
/// against the function they refer to.
fn codegen_error(func: &ir::Function, e: CodegenError) -> BackendError {
    match e {
        CodegenError::Verifier(errors) => {
            BackendError::Verifier(pretty_verifier_error(func, None, errors))
        }
        other => BackendError::Codegen(other.to_string()),
    }
}

/// The host ISA with vssa's flags.
fn host_isa(verify: bool, opt_level: &str) -> Result<OwnedTargetIsa, BackendError> {
    let isa_err = |e: &dyn std::fmt::Display| BackendError::Isa(e.to_string());
    let mut flags = settings::builder();
    for (k, v) in [
        ("opt_level", opt_level),
        ("enable_verifier", if verify { "true" } else { "false" }),
        // cranelift-jit's requirements: absolute addresses, far calls.
        ("is_pic", "false"),
        ("use_colocated_libcalls", "false"),
        // Functions with signatures return all their results: those that
        // do not fit the return registers go through a hidden pointer to
        // the caller's stack, on both sides of every call.
        ("enable_multi_ret_implicit_sret", "true"),
    ] {
        flags.set(k, v).map_err(|e| isa_err(&e))?;
    }
    let builder = cranelift_native::builder().map_err(|e| isa_err(&e))?;
    builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| isa_err(&e))
}

#[cfg(test)]
mod tests;
