//! Shared pieces of the fuzz targets: sizes that favour edge values, data
//! drawn from a seed, and the comparison with `receptive::reference`.
//!
//! Inputs are flat structs of integers and booleans, so `arbitrary` reads
//! them as the bytes in order (little-endian) and `make_corpus.py` can write
//! seed inputs by hand.

use arbitrary::{Arbitrary, Result, Unstructured};

/// A size for the shape algebra, mostly edge values. One byte `t`:
/// `t < 128` is `t`; `128..192` is `1 << (t - 128)`; `192..224` is
/// `usize::MAX - (t - 192)`; `224..240` is `usize::MAX / 2 + (t - 224)`;
/// `240..` reads the value from the next 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'a> Arbitrary<'a> for Size {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let t: u8 = u.arbitrary()?;
        let v = match t {
            0..128 => t as usize,
            128..192 => 1usize.checked_shl(u32::from(t - 128)).unwrap_or(0),
            192..224 => usize::MAX - usize::from(t - 192),
            224..240 => usize::MAX / 2 + usize::from(t - 224),
            240.. => u64::arbitrary(u)? as usize,
        };
        Ok(Size(v))
    }
}

/// Deterministic values from `seed`: small multiples of 1/8 in [-2, 2]
/// (exact in f32, so no sum overflows); with `specials`, about one in
/// sixteen is NaN, an infinity, -0.0 or a denormal instead.
pub fn values(len: usize, seed: u64, specials: bool) -> Vec<f32> {
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (s >> 33) as u32;
            if specials && r.is_multiple_of(16) {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-40][(r / 16 % 5) as usize]
            } else {
                ((r / 16 % 33) as f32 - 16.0) / 8.0
            }
        })
        .collect()
}

/// Absolute values, for the reference's error bound.
pub fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Holds `got` to `want`: NaN where the reference has NaN, the same
/// infinity, else within `reference::tolerance(k, abs_sum)`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], abs_sum: &[f32], k: usize) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= receptive::reference::tolerance(k, abs_sum[i])
        };
        assert!(ok, "{what}: output {i} is {g}, the reference says {w} (|products| sum {})", abs_sum[i]);
    }
}

/// Bitwise equality, NaN included.
pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}
