//! `out[j] = src[2 * j]`: the column gather of a stride-2 band fill (one
//! column phase of an input row), vectorized. Plain Rust compiles it to
//! 128-bit shuffles; with the ISA's wider permutes the fill of a
//! few-channel stride-2 layer (3x3 over 3 channels, where each input float
//! feeds only 72 FMAs) takes a third of the time.

use crate::isa::Isa;

/// Writes `out[j] = src[2 * j]` for every `j < out.len()`.
///
/// # Panics
/// If `src` is shorter than `2 * out.len() - 1`.
#[inline(always)]
pub(crate) fn copy_evens(out: &mut [f32], src: &[f32]) {
    let n = out.len();
    assert!(n == 0 || src.len() > 2 * (n - 1), "source too short");
    // Short rows stay inline: a call per 28-float row (a 56-wide input)
    // cost more than the permutes save (r50's 1x1 stride-2 layer, -5%).
    let done = if n < WIDE {
        0
    } else {
        match Isa::active() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512F (`active` only reports what it supports).
            Isa::Avx512 => unsafe { x86::evens_avx512(out, src) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (as above).
            Isa::Avx2 => unsafe { x86::evens_avx2(out, src) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the CPU has NEON (as above).
            Isa::Neon => unsafe { arm::evens_neon(out, src) },
            _ => 0,
        }
    };
    if done < n {
        // Pairs, which the compiler turns into deinterleaving shuffles.
        let (out, src) = (&mut out[done..], &src[2 * done..]);
        let pairs = out.len().min(src.len() / 2);
        for (o, pair) in out[..pairs].iter_mut().zip(src.chunks_exact(2)) {
            *o = pair[0];
        }
        if pairs < out.len() {
            out[pairs] = src[2 * pairs];
        }
    }
}

/// `out[j] = src[step * j]` for `step` 3 or 4 with AVX-512 permutes, if
/// the row is long enough and the CPU has them; returns whether it wrote
/// `out` (else the caller gathers it). An AlexNet-like 11x11 stride-4 first
/// layer spent an eighth of its time in the scalar gather.
///
/// # Panics
/// If `src` is shorter than `step * (out.len() - 1) + 1`, or `step` is not
/// 3 or 4.
#[inline(always)]
pub(crate) fn copy_every(out: &mut [f32], src: &[f32], step: usize) -> bool {
    let n = out.len();
    assert!((3..=4).contains(&step), "step 3 or 4");
    assert!(n == 0 || src.len() > step * (n - 1), "source too short");
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if n >= WIDE / step => {
            // SAFETY: the CPU has AVX-512F (`active` only reports what it
            // supports); src is long enough (asserted).
            unsafe { x86::every_avx512(out, src, step) };
            true
        }
        _ => false,
    }
}

/// The shortest run worth a call into the vector loops.
const WIDE: usize = 64;

/// Whole blocks of `lanes` floats of `out` while `src` holds the `2 *
/// lanes` each reads.
fn blocks(out: &[f32], src: &[f32], lanes: usize) -> usize {
    out.len().min(src.len() / 2) / lanes
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::copy_every`]: each 16 outputs from up to four masked loads
    /// (`16 * step` floats), two two-vector permutes and a blend.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `src` holds `step * (out.len() - 1) + 1`
    /// floats, `step <= 4`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn every_avx512(out: &mut [f32], src: &[f32], step: usize) {
        let n = out.len();
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(step as i32));
        // Lanes whose source lies in the third or fourth vector.
        let upper = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(32));
        let mask = |len: usize| ((1u32 << len.min(16)) - 1) as __mmask16;
        for j in (0..n).step_by(16) {
            let avail = (src.len() - step * j).min(64);
            // SAFETY: vector v reads the first avail - 16v floats (at most
            // 16) from step * j + 16v on, inside src; the store writes
            // out[j..min(j + 16, n)].
            unsafe {
                let s = src.as_ptr().add(step * j);
                let v: [__m512; 4] = std::array::from_fn(|v| {
                    _mm512_maskz_loadu_ps(mask(avail.saturating_sub(16 * v)), s.wrapping_add(16 * v))
                });
                let lo = _mm512_permutex2var_ps(v[0], idx, v[1]);
                let hi = _mm512_permutex2var_ps(v[2], idx, v[3]);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(j), mask(n - j), _mm512_mask_blend_ps(upper, lo, hi));
            }
        }
    }

    /// [`super::copy_evens`] (all of `out`; returns its length).
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn evens_avx512(out: &mut [f32], src: &[f32]) -> usize {
        let blocks = super::blocks(out, src, 16);
        let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for b in 0..blocks {
            // SAFETY: block b reads src[32b..32b + 32] and writes
            // out[16b..16b + 16], inside both (`blocks`).
            unsafe {
                let s = src.as_ptr().add(32 * b);
                let (lo, hi) = (_mm512_loadu_ps(s), _mm512_loadu_ps(s.add(16)));
                _mm512_storeu_ps(out.as_mut_ptr().add(16 * b), _mm512_permutex2var_ps(lo, idx, hi));
            }
        }
        // The last part-block under masks (rows of a 56-wide input have 28
        // floats per phase: a call per row with a scalar tail lost 9%).
        let (j, n) = (16 * blocks, out.len());
        if j < n {
            let avail = (src.len() - 2 * j).min(32);
            let mask = |len: usize| ((1u32 << len.min(16)) - 1) as __mmask16;
            // SAFETY: the loads read the first `avail` floats of src from
            // 2j on, the store writes out[j..n], inside both.
            unsafe {
                let s = src.as_ptr().add(2 * j);
                let lo = _mm512_maskz_loadu_ps(mask(avail), s);
                let hi = _mm512_maskz_loadu_ps(mask(avail.saturating_sub(16)), s.wrapping_add(16));
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(j), mask(n - j), _mm512_permutex2var_ps(lo, idx, hi));
            }
        }
        n
    }

    /// The whole 8-float blocks of [`super::copy_evens`]; returns the
    /// floats of `out` written.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn evens_avx2(out: &mut [f32], src: &[f32]) -> usize {
        let blocks = super::blocks(out, src, 8);
        for b in 0..blocks {
            // SAFETY: block b reads src[16b..16b + 16] and writes
            // out[8b..8b + 8], inside both (`blocks`).
            unsafe {
                let s = src.as_ptr().add(16 * b);
                let (lo, hi) = (_mm256_loadu_ps(s), _mm256_loadu_ps(s.add(8)));
                // [l0 l2 h0 h2 | l4 l6 h4 h6], then its 64-bit pairs
                // reordered to [l0 l2 l4 l6 | h0 h2 h4 h6].
                let pairs = _mm256_castps_pd(_mm256_shuffle_ps::<0x88>(lo, hi));
                let evens = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(pairs));
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * b), evens);
            }
        }
        blocks * 8
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    /// The whole 4-float blocks of [`super::copy_evens`]; returns the
    /// floats of `out` written.
    ///
    /// # Safety
    /// The CPU has NEON.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn evens_neon(out: &mut [f32], src: &[f32]) -> usize {
        let blocks = super::blocks(out, src, 4);
        for b in 0..blocks {
            // SAFETY: block b reads src[8b..8b + 8] and writes
            // out[4b..4b + 4], inside both (`blocks`).
            unsafe { vst1q_f32(out.as_mut_ptr().add(4 * b), vld2q_f32(src.as_ptr().add(8 * b)).0) }
        }
        blocks * 4
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_evens, copy_every};

    #[test]
    fn copies_every_third_and_fourth_float_at_any_length() {
        let src: Vec<f32> = (0..600).map(|i| i as f32).collect();
        for step in 3..=4 {
            for n in (1..=100usize).chain([127, 128, 129]) {
                for len in [step * (n - 1) + 1, 600] {
                    let mut out = vec![f32::NAN; n];
                    let ran = copy_every(&mut out, &src[..len], step);
                    let vector = cfg!(target_arch = "x86_64") && crate::isa::Isa::active() == crate::isa::Isa::Avx512;
                    assert_eq!(ran, vector && n >= super::WIDE / step, "step {step} n {n}");
                    if ran {
                        let want: Vec<f32> = (0..n).map(|j| (step * j) as f32).collect();
                        assert_eq!(out, want, "step {step} n {n} len {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn copies_every_other_float_at_any_length() {
        let src: Vec<f32> = (0..300).map(|i| i as f32).collect();
        for n in (0..=100usize).chain([127, 128, 129]) {
            // The shortest source the call allows, and the whole one.
            for len in [(2 * n).saturating_sub(1), 300] {
                let mut out = vec![f32::NAN; n];
                copy_evens(&mut out, &src[..len]);
                let want: Vec<f32> = (0..n).map(|j| (2 * j) as f32).collect();
                assert_eq!(out, want, "n {n} len {len}");
            }
        }
    }
}
