//! The peak probe: this machine's single-core f32 FMA throughput per ISA,
//! measured with independent FMA chains that touch no memory, so benchmarks
//! can say what share of the peak a kernel reaches.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use crate::gemm::simd::Simd;
use crate::isa::Isa;

/// Independent accumulator chains: more than FMA latency x FMA ports on any
/// current core (Zen 5: 4 x 2), few enough to stay in registers everywhere.
const CHAINS: usize = 12;

/// Runs `iters` rounds of one FMA on each chain; returns a value that
/// depends on all of them, so none is optimized away.
///
/// # Safety
/// The CPU supports `S`.
#[inline(always)]
unsafe fn chains<S: Simd>(iters: usize, x: f32, y: f32) -> f32 {
    // SAFETY: the caller guarantees the CPU has S's features; the only
    // memory touched is the local `out`, LANES floats long.
    unsafe {
        let (x, y) = (S::splat(x), S::splat(y));
        let mut acc = [S::zero(); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = S::fmadd(*a, x, y);
            }
        }
        let mut sum = acc[0];
        for &a in &acc[1..] {
            sum = S::add(sum, a);
        }
        let mut out = [0.0f32; 16];
        S::store(out.as_mut_ptr(), sum);
        out[0]
    }
}

/// One probe for each ISA: `(floats per FMA, the chains in a target-feature shell)`.
type Probe = (usize, unsafe fn(usize, f32, f32) -> f32);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::chains;
    use crate::gemm::simd::Simd;

    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512(iters: usize, x: f32, y: f32) -> f32 {
        // SAFETY: forwarded: the CPU has AVX-512F.
        unsafe { chains::<crate::gemm::avx512::Avx512>(iters, x, y) }
    }
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(iters: usize, x: f32, y: f32) -> f32 {
        // SAFETY: forwarded: the CPU has AVX2 and FMA.
        unsafe { chains::<crate::gemm::avx2::Avx2>(iters, x, y) }
    }
    pub(super) const AVX512_LANES: usize = crate::gemm::avx512::Avx512::LANES;
    pub(super) const AVX2_LANES: usize = crate::gemm::avx2::Avx2::LANES;
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::chains;
    use crate::gemm::simd::Simd;

    /// # Safety
    /// The CPU supports NEON.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn neon(iters: usize, x: f32, y: f32) -> f32 {
        // SAFETY: forwarded: the CPU has NEON.
        unsafe { chains::<crate::gemm::neon::Neon>(iters, x, y) }
    }
    pub(super) const NEON_LANES: usize = crate::gemm::neon::Neon::LANES;
}

/// # Safety
/// Always safe: scalar code (`unsafe` only to share the probe's type).
unsafe fn scalar(iters: usize, x: f32, y: f32) -> f32 {
    // SAFETY: `Scalar` needs no CPU feature.
    unsafe { chains::<crate::gemm::scalar::Scalar>(iters, x, y) }
}

fn probe(isa: Isa) -> Option<Probe> {
    if !isa.supported() {
        return None;
    }
    match isa {
        Isa::Scalar => Some((1, scalar)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some((x86::AVX512_LANES, x86::avx512)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some((x86::AVX2_LANES, x86::avx2)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some((arm::NEON_LANES, arm::neon)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// This core's f32 FMA peak in GFLOP/s (2 FLOPs per lane per FMA) for
/// kernels written for `isa`, single thread; `None` when the CPU cannot run
/// `isa`. Measured once per process per ISA (about 0.1 s), best of 25.
pub fn peak_gflops(isa: Isa) -> Option<f64> {
    static PEAKS: [OnceLock<Option<f64>>; Isa::ALL.len()] = [const { OnceLock::new() }; Isa::ALL.len()];
    let slot = Isa::ALL.iter().position(|&i| i == isa)?;
    *PEAKS[slot].get_or_init(|| {
        let (lanes, run) = probe(isa)?;
        let time = |iters: usize| {
            let t = Instant::now();
            // SAFETY: `probe` returned this shell only for a supported ISA.
            black_box(unsafe { run(black_box(iters), black_box(0.999_999), black_box(1e-7)) });
            t.elapsed().as_secs_f64()
        };
        // Many short runs, the fastest kept: a run the scheduler preempts
        // (a busy machine) only ever reads slower. Calibrate to about 2 ms.
        let mut iters = 1 << 12;
        while time(iters) < 0.002 && iters < 1 << 34 {
            iters *= 2;
        }
        let best = (0..25).map(|_| time(iters)).fold(f64::INFINITY, f64::min);
        Some((2 * lanes * CHAINS * iters) as f64 / best / 1e9)
    })
}
