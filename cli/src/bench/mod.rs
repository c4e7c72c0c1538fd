//! `receptive bench`: times a suite of layers on this machine, checks every
//! result against `receptive::reference`, and tracks runs against stored ones.

mod baseline;
mod check;
pub mod json;
mod ops;
mod peak;
mod suite;
mod timing;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use receptive::Isa;

use baseline::{Record, Verdict};
use check::Check;
use ops::{Spec, Work};
use timing::Stats;

pub const USAGE: &str = "receptive bench [--suite FILE] [--threads N] [--isa scalar|avx2|avx512|neon] [--json]
                [--no-check] [--save NAME] [--baseline NAME] [--budget-ms MS]
      --suite FILE     run the cases of FILE (one `op key=value ...` a line) instead of the default suite
      --threads N      run on a pool of N threads (default: rayon's, one per core)
      --isa NAME       cap the instruction set, as RECEPTIVE_MAX_ISA (re-runs the command with it set)
      --json           one JSON object per case on stdout, nothing else
      --no-check       skip the comparison with the reference
      --save NAME      store this run in $RECEPTIVE_BENCH_DIR (default target/receptive-bench)/NAME.jsonl
      --baseline NAME  compare each case with a stored run and flag changes beyond the noise
      --budget-ms MS   timing budget per case (default 500)
The environment variable RECEPTIVE_CONV_ALGORITHM=auto|implicit|implicit_t|im2col|direct forces how
GEMM-path convolutions reach their pixels (to compare the lowerings on a suite).";

#[derive(Debug, Default)]
struct Options {
    suite: Option<PathBuf>,
    threads: Option<usize>,
    isa: Option<Isa>,
    json: bool,
    no_check: bool,
    save: Option<String>,
    baseline: Option<String>,
    budget: Option<Duration>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value =
                || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{flag} needs a value"));
            let count = |v: String, what: &str| match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} {v}: {what} must be a whole number of at least 1")),
            };
            match flag {
                "--suite" => o.suite = Some(PathBuf::from(value()?)),
                "--threads" => o.threads = Some(count(value()?, "the thread count")?),
                "--isa" => {
                    let v = value()?;
                    o.isa = Some(Isa::parse(&v).ok_or(format!("--isa {v}: not one of scalar, avx2, avx512, neon"))?);
                }
                "--json" => o.json = true,
                "--no-check" => o.no_check = true,
                "--save" => o.save = Some(value()?),
                "--baseline" => o.baseline = Some(value()?),
                "--budget-ms" => o.budget = Some(Duration::from_millis(count(value()?, "the budget")? as u64)),
                _ => return Err(format!("unknown bench option '{arg}'\nusage: {USAGE}")),
            }
        }
        Ok(o)
    }
}

/// The ISA cap in the environment; an unknown name is an error here (the
/// library ignores it so that detection never fails).
fn env_isa_cap() -> Result<Option<Isa>, String> {
    match std::env::var("RECEPTIVE_MAX_ISA") {
        Ok(v) if !v.is_empty() => {
            Isa::parse(&v).map(Some).ok_or(format!("RECEPTIVE_MAX_ISA={v} names no ISA (scalar, avx2, avx512 or neon)"))
        }
        _ => Ok(None),
    }
}

/// `--isa`: the library detects its ISA once per process from
/// `RECEPTIVE_MAX_ISA`, so the cap is applied by running this same command
/// again with the variable set (the child sees it set and runs the suite).
fn rerun_with_isa_cap(isa: Isa, args: &[String]) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("--isa: cannot find this executable: {e}"))?;
    let status = std::process::Command::new(exe)
        .arg("bench")
        .args(args)
        .env("RECEPTIVE_MAX_ISA", isa.name())
        .status()
        .map_err(|e| format!("--isa: cannot re-run this executable: {e}"))?;
    Ok(ExitCode::from(status.code().map_or(1, |c| c.clamp(0, 255) as u8)))
}

/// Runs `receptive bench` with its arguments.
pub fn run(args: &[String]) -> Result<ExitCode, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: {USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let opts = Options::parse(args)?;
    let cap = env_isa_cap()?;
    if let Some(isa) = opts.isa
        && cap != Some(isa)
    {
        return rerun_with_isa_cap(isa, args);
    }
    let suite = match &opts.suite {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read suite {}: {e}", path.display()))?;
            suite::parse(&text, &path.display().to_string())?
        }
        None => suite::parse(suite::DEFAULT, "default suite")?,
    };
    let base = opts.baseline.as_deref().map(baseline::load).transpose()?;
    if let Some(name) = &opts.save {
        baseline::file(name)?;
    }
    let records = match opts.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| format!("cannot start {n} threads: {e}"))?
            .install(|| run_suite(&suite, &opts, base.as_ref())),
        None => run_suite(&suite, &opts, base.as_ref()),
    };
    let failed = records.iter().filter(|r| !r.ok).count();
    if let Some(name) = &opts.save {
        let lines: Vec<String> = records.iter().map(|r| r.json.clone()).collect();
        let path = baseline::save(name, &lines)?;
        if !opts.json {
            println!("saved {} cases to {}", lines.len(), path.display());
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} cases failed (see above)", records.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What one case left behind: its JSON record and whether it passed.
struct Done {
    json: String,
    ok: bool,
}

/// A measured case, before it is printed.
struct Measured {
    path: String,
    stats: Stats,
    check: Option<Check>,
}

fn measure(spec: &Spec, budget: Duration, no_check: bool) -> Result<Measured, String> {
    let mut bench = ops::prepare(spec)?;
    let stats = timing::measure(budget, || bench.run())?;
    let check = if no_check { None } else { Some(bench.check()?) };
    Ok(Measured { path: bench.path(), stats, check })
}

/// The machine figures throughput is compared with.
struct Machine {
    isa: Isa,
    threads: usize,
    /// Bytes/s of a DRAM-sized copy, for the header; measured only when the
    /// suite has pooling. Each pooling case is compared with a copy of its
    /// own size instead.
    copy_bandwidth: Option<f64>,
    /// FLOP/s of the FMA peak probe for this ISA, times the thread count;
    /// measured only when the suite has compute cases.
    fma_peak: Option<f64>,
}

impl Machine {
    fn rate(&self, work: Work, seconds: f64) -> (&'static str, f64, Option<f64>) {
        match work {
            Work::Flops(f) => {
                let rate = f as f64 / seconds;
                ("GFLOP/s", rate / 1e9, self.fma_peak.map(|peak| rate / peak))
            }
            Work::Bytes(b) => {
                let rate = b as f64 / seconds;
                let same_size_copy = self
                    .copy_bandwidth
                    .map(|_| peak::copy_bandwidth(usize::try_from(b).unwrap_or(peak::DRAM_COPY_BYTES)));
                ("GB/s", rate / 1e9, same_size_copy.map(|bw| rate / bw))
            }
        }
    }
}

fn run_suite(specs: &[Spec], opts: &Options, base: Option<&std::collections::BTreeMap<String, Record>>) -> Vec<Done> {
    let needs_copy = specs.iter().any(|s| matches!(s.work, Work::Bytes(_)));
    let needs_fma = specs.iter().any(|s| matches!(s.work, Work::Flops(_)));
    let (isa, threads) = (receptive::active_isa(), rayon::current_num_threads());
    let machine = Machine {
        isa,
        threads,
        copy_bandwidth: needs_copy.then(|| peak::copy_bandwidth(peak::DRAM_COPY_BYTES)),
        fma_peak: if needs_fma { receptive::peak_gflops(isa).map(|g| g * 1e9 * threads as f64) } else { None },
    };
    let budget = opts.budget.unwrap_or(Duration::from_millis(500));
    let table = Table::new(specs, opts.baseline.as_deref());
    if !opts.json {
        if let Some(cap) = opts.isa.filter(|&c| c != machine.isa) {
            println!("note: --isa {cap} is a cap; this CPU's best path under it is {}", machine.isa);
        }
        let bw = machine.copy_bandwidth.map_or(String::new(), |b| format!(", DRAM copy {:.1} GB/s", b / 1e9));
        let fma = machine.fma_peak.map_or(String::new(), |p| format!(", FMA peak {:.0} GFLOP/s", p / 1e9));
        println!(
            "isa {}, {} threads{fma}{bw} (peak: compute vs the FMA peak, pooling vs a copy of the same bytes)",
            machine.isa, machine.threads
        );
        table.header();
    }
    let progress = !opts.json && std::io::stderr().is_terminal();
    let mut done = Vec::new();
    let mut notes = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if progress {
            eprint!("\r\x1b[2K[{}/{}] {} ...", i + 1, specs.len(), spec.case.name);
            let _ = std::io::stderr().flush();
        }
        let result = measure(spec, budget, opts.no_check);
        if progress {
            eprint!("\r\x1b[2K");
        }
        let name = &spec.case.name;
        let d = match result {
            Err(e) => {
                let json = json::Writer::default()
                    .str("name", name)
                    .str("op", spec.case.op.word())
                    .str("shape", &spec.shape)
                    .str("error", &e)
                    .finish();
                if opts.json {
                    println!("{json}");
                } else {
                    println!("{name:<w$}  ERROR: {e}", w = table.name_w);
                }
                Done { json, ok: false }
            }
            Ok(m) => {
                let old = base.and_then(|b| b.get(name));
                let d = record(spec, &m, &machine, old);
                if opts.json {
                    println!("{}", d.json);
                } else {
                    table.row(spec, &m, &machine, old);
                    if m.stats.wide() {
                        notes.push(format!(
                            "{name}: wide spread, (q3 - q1) / median = {:.0}% over {} samples; rerun on a quieter machine",
                            100.0 * m.stats.spread(),
                            m.stats.samples
                        ));
                    }
                    if let Some(c) = m.check.as_ref().filter(|c| !c.ok() || c.sampled()) {
                        notes.push(format!("{name}: {}", c.describe()));
                    }
                    if let Some(old) = old.filter(|o| {
                        o.threads != Some(machine.threads as f64) || o.isa.as_deref() != Some(machine.isa.name())
                    }) {
                        notes.push(format!(
                            "{name}: the baseline ran with {} threads on {}",
                            old.threads.map_or("?".into(), |t| t.to_string()),
                            old.isa.as_deref().unwrap_or("?")
                        ));
                    }
                }
                d
            }
        };
        done.push(d);
    }
    if !opts.json {
        for n in &notes {
            println!("  * {n}");
        }
        let failed = done.iter().filter(|d| !d.ok).count();
        let checked = if opts.no_check { "not checked (--no-check)" } else { "checked against reference" };
        println!("{} cases, {} failed; results {checked}", done.len(), failed);
    }
    done
}

/// The JSON record of a measured case (also what `--save` stores).
fn record(spec: &Spec, m: &Measured, machine: &Machine, old: Option<&Record>) -> Done {
    let s = &m.stats;
    let (unit, rate, share) = machine.rate(spec.work, s.median);
    let mut w = json::Writer::default();
    w.str("name", &spec.case.name)
        .str("op", spec.case.op.word())
        .str("shape", &spec.shape)
        .str("path", &m.path)
        .num("ms", s.median * 1e3)
        .num("min_ms", s.min * 1e3)
        .num("max_ms", s.max * 1e3)
        .num("q1_ms", s.q1 * 1e3)
        .num("q3_ms", s.q3 * 1e3)
        .int("samples", s.samples as u64)
        .int("runs", s.runs as u64)
        .num(if unit == "GB/s" { "gbps" } else { "gflops" }, rate)
        .opt_num("peak_share", share)
        .opt_num("max_abs_err", m.check.as_ref().map(|c| c.max_abs_err))
        .str("check", m.check.as_ref().map_or("skipped", |c| if c.ok() { "ok" } else { "FAIL" }))
        .int("checked", m.check.as_ref().map_or(0, |c| c.checked as u64))
        .int("threads", machine.threads as u64)
        .str("isa", machine.isa.name());
    if let Some(old) = old {
        let (speedup, verdict) = baseline::compare(old, s.median * 1e3, s.spread());
        w.num("baseline_ms", old.ms).num("speedup", speedup).str("verdict", verdict_word(verdict));
    }
    Done { json: w.finish(), ok: m.check.as_ref().is_none_or(Check::ok) }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Faster => "faster",
        Verdict::Slower => "slower",
        Verdict::Same => "same",
    }
}

/// The human-readable table, printed a row at a time as cases finish.
struct Table {
    name_w: usize,
    shape_w: usize,
    baseline: Option<String>,
}

const PATH_W: usize = 36;

impl Table {
    fn new(specs: &[Spec], baseline: Option<&str>) -> Table {
        let w = |f: fn(&Spec) -> usize, min| specs.iter().map(f).max().unwrap_or(0).max(min);
        Table {
            name_w: w(|s| s.case.name.len(), 4),
            shape_w: w(|s| s.shape.len(), 5),
            baseline: baseline.map(String::from),
        }
    }

    fn header(&self) {
        let vs = self.baseline.as_ref().map_or(String::new(), |b| format!("  vs {b}"));
        println!(
            "{:<nw$}  {:<sw$}  {:<PATH_W$}  {:>9}  {:>19}  {:>15}  {:>5}  {:>9}  check{vs}",
            "case",
            "shape",
            "path",
            "median ms",
            "min..max ms",
            "throughput",
            "peak",
            "max err",
            nw = self.name_w,
            sw = self.shape_w
        );
    }

    fn row(&self, spec: &Spec, m: &Measured, machine: &Machine, old: Option<&Record>) {
        let s = &m.stats;
        let (unit, rate, share) = machine.rate(spec.work, s.median);
        let ms = |v: f64| format!("{:.3}", v * 1e3);
        let range = format!("{}..{}", ms(s.min), ms(s.max));
        let peak = share.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * p));
        let (err, ok) = match &m.check {
            None => ("-".to_string(), "skip"),
            Some(c) => (format!("{:.1e}", c.max_abs_err), if c.ok() { "ok" } else { "FAIL" }),
        };
        let wide = if s.wide() { "*" } else { " " };
        let vs = match (self.baseline.as_ref(), old) {
            (None, _) => String::new(),
            (Some(_), None) => "  (not in baseline)".to_string(),
            (Some(_), Some(old)) => {
                let (speedup, v) = baseline::compare(old, s.median * 1e3, s.spread());
                let flag = match v {
                    Verdict::Faster => " faster",
                    Verdict::Slower => " SLOWER",
                    Verdict::Same => "",
                };
                format!("  x{speedup:.2}{flag}")
            }
        };
        println!(
            "{:<nw$}  {:<sw$}  {:<PATH_W$}  {:>8}{wide}  {:>19}  {:>7.1} {unit:<7}  {:>5}  {:>9}  {ok:<5}{vs}",
            spec.case.name,
            spec.shape,
            m.path,
            ms(s.median),
            range,
            rate,
            peak,
            err,
            nw = self.name_w,
            sw = self.shape_w
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(line: &str) -> Result<Options, String> {
        Options::parse(&line.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_both_spellings() {
        let o = opts("--threads 2 --isa=avx2 --json --no-check --save a --baseline=b --budget-ms 20").unwrap();
        assert_eq!(o.threads, Some(2));
        assert_eq!(o.isa, Some(Isa::Avx2));
        assert!(o.json && o.no_check);
        assert_eq!((o.save.as_deref(), o.baseline.as_deref()), (Some("a"), Some("b")));
        assert_eq!(o.budget, Some(Duration::from_millis(20)));
        assert!(opts("--threads 0").unwrap_err().contains("at least 1"));
        assert!(opts("--threads").unwrap_err().contains("needs a value"));
        assert!(opts("--isa sse").unwrap_err().contains("not one of"));
        assert!(opts("--fast").unwrap_err().contains("unknown bench option '--fast'"));
    }
}
