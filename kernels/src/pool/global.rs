//! Global pooling: one reduction per contiguous plane.

use super::simd::Simd;

/// Mean of each of `planes` planes of `len` floats.
///
/// # Safety
/// `x` holds `planes * len` readable floats, `y` `planes` writable ones, `len > 0`.
#[inline(always)]
pub(crate) unsafe fn avg_planes<S: Simd>(x: *const f32, len: usize, y: *mut f32, planes: usize) {
    let l = S::LANES;
    let inv = 1.0 / len as f32;
    // SAFETY: every load stays inside plane p, `x[p*len .. (p+1)*len]`.
    unsafe {
        for p in 0..planes {
            let xp = x.add(p * len);
            let (mut a0, mut a1) = (S::splat(0.0), S::splat(0.0));
            let mut i = 0;
            while i + 2 * l <= len {
                a0 = S::add(a0, S::load(xp.add(i)));
                a1 = S::add(a1, S::load(xp.add(i + l)));
                i += 2 * l;
            }
            if i + l <= len {
                a0 = S::add(a0, S::load(xp.add(i)));
                i += l;
            }
            let mut s = S::hsum(S::add(a0, a1));
            for j in i..len {
                s += *xp.add(j);
            }
            *y.add(p) = s * inv;
        }
    }
}

/// Maximum of each of `planes` planes of `len` floats, exactly as the
/// sequential rule `v > best || v.is_nan()` over the plane in order.
///
/// The lanes see the plane out of order, which only matters when the
/// result's bits depend on the order: the last NaN wins, and the first of
/// `+0.0` / `-0.0` wins a zero maximum. Those planes are redone in order.
///
/// # Safety
/// As [`avg_planes`].
#[inline(always)]
pub(crate) unsafe fn max_planes<S: Simd>(x: *const f32, len: usize, y: *mut f32, planes: usize) {
    let l = S::LANES;
    let rule = |best: f32, v: f32| if v > best || v.is_nan() { v } else { best };
    // SAFETY: every load stays inside plane p, `x[p*len .. (p+1)*len]`;
    // `lanes` holds 16 >= LANES floats.
    unsafe {
        for p in 0..planes {
            let xp = x.add(p * len);
            let mut best = S::splat(f32::NEG_INFINITY);
            let mut i = 0;
            while i + l <= len {
                best = S::max_nan(best, S::load(xp.add(i)));
                i += l;
            }
            let mut lanes = [f32::NEG_INFINITY; 16];
            S::store(lanes.as_mut_ptr(), best);
            let mut r = lanes[..l].iter().fold(f32::NEG_INFINITY, |b, &v| rule(b, v));
            for j in i..len {
                r = rule(r, *xp.add(j));
            }
            if r.is_nan() || r == 0.0 {
                r = (0..len).fold(f32::NEG_INFINITY, |b, j| rule(b, *xp.add(j)));
            }
            *y.add(p) = r;
        }
    }
}
