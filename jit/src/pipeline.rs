//! The pipeline for one unit: build (the guest's callback) → verify →
//! replay the unit's patch log or optimize and speculate → record the log
//! → lower guards → the code caches (in memory, then the file beside the
//! patch log) or schedule and Cranelift.

use crate::book::{load_book, may_keep_code_beside, save_book, warn_replay};
use crate::error::JitError;
use crate::guest::{Built, Guest, Site};
use crate::report::{CpuSpan, JitConfig, JitReport};
use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use vssa::{Addr, Graph};
use vssa_backend::{CodeCache, CodeStore, HostFn, Jit, JitOptions, OwnedCode, TypedCaller};
use vssa_deopt::ExitTable;
use vssa_patch::{Log, LogBook, SealKey};

/// One compilation asked of [`UnitCompiler::compile`].
#[derive(Clone, Copy)]
pub struct UnitRequest<'a, U> {
    pub unit: U,
    /// Whether to speculate that the site labelled so was never taken
    /// (`Site::label`); `None`: no speculation.
    pub speculate: Option<&'a dyn Fn(usize) -> bool>,
    /// The units' patch logs (from the patch-log file, or earlier
    /// compilations in this run). If it has this unit's log, its patches
    /// are replayed instead of optimizing, up to the first one that builds
    /// a refuted guard, and refuted guards are never speculated on again.
    pub book: &'a LogBook,
    /// Function name for the JIT and the dumps.
    pub name: &'a str,
}

/// A compiled unit.
pub struct UnitCode {
    /// The machine code, shared with the code cache (freed when neither
    /// holds it any more).
    pub code: Arc<OwnedCode>,
    pub exits: ExitTable,
    /// The content key of the final graph ([`vssa::live_graph_key`]):
    /// its key in the code cache.
    pub code_key: Addr,
    /// Whether the code came from the cache.
    pub cached: bool,
    /// The program key of the unit's built graph: its key in the [`LogBook`].
    pub key: Addr,
    /// What the optimizer and speculation did, as patches, with the
    /// refuted guards (when optimizing). `None` also when the unit's log
    /// in the book was replayed in full: that log is still the unit's.
    pub log: Option<Log>,
    /// The guest's "host call failed" return code ([`Guest::error_exit`]).
    pub error_exit: Option<u32>,
}

/// Compiles units: the pipeline's options, the JIT, and the code cache
/// that lets a recompilation skip code generation for every unit whose
/// final graph it has compiled before.
pub struct UnitCompiler {
    jit: Jit,
    cfg: JitConfig,
    /// Machine code by final-graph key ([`UnitCode::code_key`]).
    pub cache: CodeCache,
    /// The code cache on disk beside the patch log, if configured: asked
    /// after `cache`, written by [`UnitCompiler::save_code`].
    store: Option<CodeStore>,
}

/// The pipeline's errors for guest `G`.
type Error<G> = JitError<<G as Guest>::Error>;

/// Where a compilation finds its patch logs: the request's book, or the
/// patch-log file, read when first needed ([`compile_program`]).
///
/// Reading the file only once the unit's graph is built puts the warm run's
/// log reading where the cold run's optimizer runs: after building, which
/// is the process's first use of the node hash and of much else that
/// loading a log also uses. Read before the build, a log paid those first
/// uses (blake3's first call alone costs 26–50 µs of CPU, the second 1–4 µs)
/// that the cold run pays in its build, outside its optimization time.
#[derive(Clone, Copy)]
enum Books<'a> {
    Given(&'a LogBook),
    OnFirstUse(&'a OnceCell<LogBook>),
}

impl<'a> Books<'a> {
    fn get(self, cfg: &JitConfig, report: &mut JitReport) -> &'a LogBook {
        match self {
            Books::Given(b) => b,
            Books::OnFirstUse(cell) => cell.get_or_init(|| load_book(cfg, report)),
        }
    }
}

impl UnitCompiler {
    /// A compiler for `cfg` and a guest calling `hosts` (the code cache
    /// file keeps code for this host table only), whose code cache keeps
    /// up to `cache_bytes` of machine code (0: no cache).
    pub fn new<R, E>(
        cfg: &JitConfig<R>,
        cache_bytes: usize,
        hosts: &[HostFn],
    ) -> Result<UnitCompiler, JitError<E>> {
        let jit = new_jit(cfg)?;
        let store = cfg
            .patch_log
            .as_ref()
            .filter(|_| cfg.optimize && cfg.code_store_bytes > 0)
            // Dumps show what code generation did: compile every unit.
            .filter(|_| !cfg.capture_clif && cfg.dump_dot.is_none())
            .filter(|log| may_keep_code_beside(log))
            .map(|log| {
                let key = SealKey::existing().ok().flatten();
                let path = vssa_backend::stored::path_beside(log);
                CodeStore::open(&path, jit.target_id(hosts), cfg.code_store_bytes, key)
            });
        Ok(UnitCompiler {
            jit,
            cfg: cfg.pipeline(),
            cache: CodeCache::new(cache_bytes),
            store,
        })
    }

    /// Writes the code cache on disk if it changed, and adds what it did
    /// (loads, misses, times, warnings) to `report`.
    pub fn save_code(&mut self, report: &mut JitReport) {
        let Some(store) = &mut self.store else {
            return;
        };
        if store.is_dirty() {
            match SealKey::user() {
                Ok(key) => store.save(&key),
                Err(e) => report.patch_log_warnings.push(format!(
                    "cannot seal code cache {}: {e}",
                    store.path().display()
                )),
            }
        }
        let stats = store.stats();
        report.code_cache_loads = stats.loads;
        report.code_cache_misses = stats.misses;
        report.code_cache_rejected = stats.rejected;
        report.code_cache_load = stats.load_time;
        report.code_cache_save = stats.save_time;
        report.patch_log_warnings.extend(store.take_warnings());
    }

    /// Makes `addr` the address of compiled function `id`, which
    /// `CallDirect { callee: id }` in units compiled (or taken from the
    /// code caches) from now on call: typically another unit's
    /// [`UnitCode::code`]`.code_ptr()`. That unit must have the signature
    /// the calls name and be kept alive while code calling it may run.
    pub fn define_function(&mut self, id: u32, addr: *const u8) {
        self.jit.define_function(id, addr);
    }

    /// An adapter that calls units of signature `sig` from Rust
    /// ([`UnitCode::call_typed`]); compile one per signature and keep it.
    pub fn typed_caller<E>(&mut self, sig: vssa::Signature) -> Result<TypedCaller, JitError<E>> {
        TypedCaller::new(&mut self.jit, sig).map_err(JitError::Backend)
    }

    /// The pipeline's options.
    pub fn config(&self) -> &JitConfig {
        &self.cfg
    }

    /// The pipeline for one unit: build, verify, replay or optimize (and
    /// speculate), record, lower guards, then the code cache or schedule
    /// and codegen. Phase times and counts add up in `report`.
    ///
    /// A patch log can only be checked patch by patch: a log edited on
    /// purpose (its checksum recomputed) may hold patches that each look
    /// valid yet leave a graph the scheduler or the backend rejects. If a
    /// unit whose log was replayed fails to compile, it is compiled again
    /// without the log, with a warning, so a bad log never stops a program.
    pub fn compile<G: Guest>(
        &mut self,
        guest: &G,
        req: &UnitRequest<'_, G::Unit>,
        report: &mut JitReport,
    ) -> Result<UnitCode, Error<G>> {
        self.compile_from(guest, req, Books::Given(req.book), report)
    }

    /// [`UnitCompiler::compile`] with the patch logs from `books` (the
    /// request's own book is not used).
    fn compile_from<G: Guest>(
        &mut self,
        guest: &G,
        req: &UnitRequest<'_, G::Unit>,
        books: Books<'_>,
        report: &mut JitReport,
    ) -> Result<UnitCode, Error<G>> {
        let size = guest.size(req.unit);
        if !size.fits() {
            return Err(JitError::TooLarge(size));
        }
        let replayed_before = report.patches_replayed;
        match self.compile_once(guest, req, books, report) {
            Err(
                e @ (JitError::Optimize(_)
                | JitError::Verify(_)
                | JitError::LowerGuards(_)
                | JitError::Schedule(_)
                | JitError::Backend(_)),
            ) if report.patches_replayed > replayed_before => {
                report.patch_log_warnings.push(format!(
                    "unit {}: the replayed patch log left a graph that does not compile ({e}); \
                     compiled without it",
                    req.name
                ));
                let empty = LogBook::new();
                let without = UnitRequest {
                    book: &empty,
                    ..*req
                };
                self.compile_once(guest, &without, Books::Given(&empty), report)
            }
            other => other,
        }
    }

    fn compile_once<G: Guest>(
        &mut self,
        guest: &G,
        req: &UnitRequest<'_, G::Unit>,
        books: Books<'_>,
        report: &mut JitReport,
    ) -> Result<UnitCode, Error<G>> {
        // Without speculation a unit's source decides its code: a unit entry
        // of the code cache file may then give the code without building.
        let direct = (self.store.is_some() && self.cfg.optimize && req.speculate.is_none())
            .then(|| guest.source_key(req.unit))
            .flatten();
        if let Some(source) = direct {
            if let Some(code) = self.place_direct(guest, source, req, books, report) {
                return Ok(code);
            }
        }
        let t = Instant::now();
        let built = guest.build(req.unit).map_err(JitError::Build)?;
        report.build += t.elapsed();
        let unit = self.compile_built(guest, built, req, books, report)?;
        if let (Some(source), Some(store)) = (direct, &mut self.store) {
            // Only a unit whose log has no refuted guards: its graph is then
            // what its source and the optimizer make (a log replayed in full
            // gives the graph optimizing gives).
            let book = books.get(&self.cfg, report);
            if book.refuted(&unit.key).is_none_or(|r| r.is_empty()) {
                let mut data = unit.key.0.to_vec();
                unit.exits.encode(&mut data);
                store.put_unit(source, unit.code_key, data);
            }
        }
        Ok(unit)
    }

    /// The unit's code placed from a unit entry of the code cache file,
    /// without building its graph; `None` (the unit is then built as usual)
    /// if there is no such entry, its data does not decode, the code is not
    /// there, or the patch log has no unit for it (the code is used only
    /// beside the log it was compiled with).
    fn place_direct<G: Guest>(
        &mut self,
        guest: &G,
        source: Addr,
        req: &UnitRequest<'_, G::Unit>,
        books: Books<'_>,
        report: &mut JitReport,
    ) -> Option<UnitCode> {
        let store = self.store.as_mut()?;
        let (code_key, data) = store.get_unit(&source)?;
        let key = Addr(data.get(..16)?.try_into().ok()?);
        let exits = ExitTable::decode(&data[16..])?;
        if !books.get(&self.cfg, report).contains(&key) {
            return None;
        }
        let code = match self.cache.get(&code_key) {
            Some(c) => c,
            None => {
                let hosts = guest.hosts();
                let c = Arc::new(store.load(&code_key, &mut self.jit, &hosts, req.name)?);
                self.cache.insert(code_key, Arc::clone(&c));
                c
            }
        };
        report.code_cache_hits += 1;
        report.code_cache_direct += 1;
        report.code_size += code.stats().code_size;
        report.guards += exits.len();
        Some(UnitCode {
            code,
            exits,
            code_key,
            cached: true,
            key,
            log: None,
            error_exit: guest.error_exit(),
        })
    }

    /// The pipeline from the built graph on.
    fn compile_built<G: Guest>(
        &mut self,
        guest: &G,
        built: Built,
        req: &UnitRequest<'_, G::Unit>,
        books: Books<'_>,
        report: &mut JitReport,
    ) -> Result<UnitCode, Error<G>> {
        let cfg = &self.cfg;
        let Built {
            mut graph,
            ctx,
            sites,
        } = built;
        report.nodes_built += graph.len();
        report.build_requests += graph.build_requests();
        report.nodes_live_built += graph.live_nodes().len();
        after_phase(cfg, guest, &graph, req.name, "1-built", report)?;
        let mut log = None;
        let rec = vssa_patch::Recorder::start(&graph);
        let key = rec.program();
        if cfg.optimize {
            let book = books.get(cfg, report);
            let refuted: BTreeSet<Addr> = book
                .refuted(&key)
                .map_or_else(BTreeSet::new, |r| r.iter().copied().collect());
            let mut replayed_all = false;
            let t = Instant::now();
            let cpu = CpuSpan::start();
            if let Some(r) = book.replay_unit(&mut graph, &rec) {
                report.patches_replayed += r.applied;
                report.patches_stale += r.stale;
                report.patches_conflicting += r.conflicting;
                report.patches_refuted += r.refuted;
                // An optimizing run that recorded nothing leaves an empty log:
                // replaying it is complete. An empty log with refutations was
                // not recorded that way (a refuted guard was built by a
                // recorded patch), so it proves nothing: the optimizer looks.
                replayed_all = r.complete() && (!r.outcomes.is_empty() || refuted.is_empty());
                report.replay += t.elapsed();
                report.replay_cpu += cpu.end();
            }
            if !replayed_all {
                let t = Instant::now();
                let cpu = CpuSpan::start();
                report.speculated += middle_end(&mut graph, &sites, req.speculate, &refuted)
                    .map_err(JitError::Optimize)?;
                report.optimize += t.elapsed();
                report.optimize_cpu += cpu.end();
            }
            report.replacements += graph.replacements().len();
            after_phase(cfg, guest, &graph, req.name, "2-optimized", report)?;
            // A log replayed in full is the unit's log already (recording
            // the replayed graph gives it back, refutations included): the
            // book keeps it, and nothing is recorded again.
            if !replayed_all {
                let t = Instant::now();
                match rec.log(&graph) {
                    Ok(mut l) => {
                        report.patches_recorded += l.patches.len();
                        for &g in &refuted {
                            l.refute(g);
                        }
                        log = Some(l);
                    }
                    Err(e) => report
                        .patch_log_warnings
                        .push(format!("unit {}: patches not recorded: {e}", req.name)),
                }
                report.patch_log_save += t.elapsed();
            }
        }
        report.nodes_after_opt += graph.live_nodes().len();

        let t = Instant::now();
        let exits = vssa_deopt::lower_guards(&mut graph, &guest.deopt_abi(ctx))
            .map_err(JitError::LowerGuards)?;
        report.guards += exits.len();
        report.schedule += t.elapsed();
        let t = Instant::now();
        let code_key = vssa::live_graph_key(&graph);
        let mut cached = self.cache.get(&code_key);
        report.code_key += t.elapsed();
        if cached.is_none() {
            if let Some(store) = &mut self.store {
                cached = store
                    .load(&code_key, &mut self.jit, &guest.hosts(), req.name)
                    .map(Arc::new);
                if let Some(code) = &cached {
                    self.cache.insert(code_key, Arc::clone(code));
                }
            }
        }
        let error_exit = guest.error_exit();
        if let Some(code) = cached {
            report.code_cache_hits += 1;
            report.code_size += code.stats().code_size;
            return Ok(UnitCode {
                code,
                exits,
                code_key,
                cached: true,
                key,
                log,
                error_exit,
            });
        }
        let t = Instant::now();
        let schedule = vssa_schedule::schedule(&graph).map_err(JitError::Schedule)?;
        report.schedule += t.elapsed();
        report.blocks += schedule.blocks.len();
        if let Some(dir) = &cfg.dump_dot {
            let phase = guest.dump_label(req.name, "3-scheduled");
            let dot = vssa_schedule::to_dot(&graph, &schedule, &phase);
            write_dump(dir, &phase, &dot)?;
        }
        let code = self
            .jit
            .compile_owned(&graph, &schedule, &guest.hosts(), req.name)
            .map_err(JitError::Backend)?;
        let stats = code.stats();
        report.lower += stats.lower;
        report.codegen += stats.compile;
        report.code_size += stats.code_size;
        report.clif_insts += stats.clif_insts;
        if let Some(c) = code.clif() {
            report.clif.get_or_insert_with(String::new).push_str(c);
        }
        if let Some(store) = &mut self.store {
            store.put(code_key, code.image());
        }
        let code = Arc::new(code);
        self.cache.insert(code_key, Arc::clone(&code));
        Ok(UnitCode {
            code,
            exits,
            code_key,
            cached: false,
            key,
            log,
            error_exit,
        })
    }
}

/// Compiles `unit` as the whole program, once, before it runs (no code
/// cache in memory: nothing is compiled twice), with the patch-log file
/// `cfg` names: loaded once the unit is built (see [`Books`]) and
/// replayed, and saved when the unit's log
/// changed. A book without this unit was recorded for another program
/// (or another build of this one): it is reported stale and replaced.
pub fn compile_program<G: Guest, R>(
    guest: &G,
    cfg: &JitConfig<R>,
    unit: G::Unit,
    name: &str,
    report: &mut JitReport,
) -> Result<UnitCode, Error<G>> {
    let mut compiler = UnitCompiler::new(cfg, 0, &guest.hosts())?;
    let file = OnceCell::new();
    let unused = LogBook::new();
    let req = UnitRequest {
        unit,
        speculate: None,
        book: &unused,
        name,
    };
    let code = compiler.compile_from(guest, &req, Books::OnFirstUse(&file), report)?;
    // Every compilation that optimizes asks for the book; one that does not
    // would find none.
    let mut book = file.into_inner().unwrap_or_default();
    warn_replay(cfg, report);
    compiler.save_code(report);
    if !book.is_empty() && !book.contains(&code.key) {
        if let Some(path) = &cfg.patch_log {
            report.patch_log_warnings.push(format!(
                "{}: stale patch log: it has no unit for this program",
                path.display()
            ));
        }
        book = LogBook::new();
    }
    if let Some(log) = &code.log {
        if !book.holds(log) {
            book.insert(log.clone());
            save_book(cfg, report, &book);
        }
    }
    Ok(code)
}

/// The middle end's passes on a freshly built (or partly replayed) graph:
/// [`vssa::standard`] (optimize, facts from branches when enabled,
/// speculation on the chosen sites (none refuted), control folding, each
/// followed by the optimizer when it changed something), with
/// `speculate_never_taken` as its speculation hook. Every change is a
/// replacement, so the recorder turns it into patches. The number of
/// speculation guards made.
pub fn middle_end(
    graph: &mut Graph,
    sites: &[Site],
    speculate: Option<&dyn Fn(usize) -> bool>,
    refuted: &BTreeSet<Addr>,
) -> Result<usize, vssa::GraphError> {
    let mut speculate_sites = |g: &mut Graph| match speculate {
        Some(never_taken) => {
            let all: Vec<_> = sites.iter().map(|s| s.branch).collect();
            let chosen = |k: usize| never_taken(sites[k].label);
            Ok(
                vssa_deopt::speculate_never_taken(g, &all, &chosen, refuted)?
                    .guards
                    .len(),
            )
        }
        None => Ok(0),
    };
    // Facts from branches stay off: even guards-only they add about half
    // to Brainfuck's middle end (mandelbrot) for the few guards they
    // remove, and its builder finds the load facts itself
    // (docs/architecture.md). Hoisting costs a scan when nothing is at a
    // loop's top.
    let passes = vssa::PassConfig {
        branch_facts: false,
        load_facts: false,
        hoist_guards: true,
        promote: true,
        closed_forms: true,
    };
    Ok(vssa::standard(graph, passes, &mut speculate_sites)?.speculated)
}

/// The target id ([`Jit::target_id`]) of the code a pipeline with `cfg`
/// compiles for a guest calling `hosts`: which entries of a code cache it
/// can use.
pub fn code_target<R, E>(cfg: &JitConfig<R>, hosts: &[HostFn]) -> Result<[u8; 32], JitError<E>> {
    Ok(new_jit(cfg)?.target_id(hosts))
}

/// A JIT for the pipeline's options.
fn new_jit<R, E>(cfg: &JitConfig<R>) -> Result<Jit, JitError<E>> {
    Jit::new(JitOptions {
        verify: cfg.verify,
        capture_clif: cfg.capture_clif,
        ..JitOptions::default()
    })
    .map_err(JitError::Backend)
}

/// Runs the graph verifier.
pub fn verify<E>(g: &Graph) -> Result<(), JitError<E>> {
    vssa::verify::verify(g).map_err(|errs| JitError::Verify(errs.into()))
}

/// What follows every phase of the graph: its DOT dump and the verifier,
/// each when the configuration asks for it.
fn after_phase<G: Guest>(
    cfg: &JitConfig,
    guest: &G,
    g: &Graph,
    name: &str,
    phase: &str,
    report: &mut JitReport,
) -> Result<(), Error<G>> {
    if let Some(dir) = &cfg.dump_dot {
        let label = guest.dump_label(name, phase);
        write_dump(dir, &label, &vssa::dot::to_dot(g, &label))?;
    }
    if cfg.verify {
        let t = Instant::now();
        verify(g)?;
        report.verify += t.elapsed();
    }
    Ok(())
}

fn write_dump<E>(dir: &std::path::Path, phase: &str, text: &str) -> Result<(), JitError<E>> {
    std::fs::create_dir_all(dir).map_err(JitError::Dump)?;
    vssa_patch::write_atomic(&dir.join(format!("{phase}.dot")), text.as_bytes())
        .map_err(JitError::Dump)
}
