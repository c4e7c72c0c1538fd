//! Instruction-set detection, done once, capped by `RECEPTIVE_MAX_ISA`.
//!
//! The cap works like oneDNN's `ONEDNN_MAX_CPU_ISA`: it can only lower the
//! choice, never raise it past what the CPU reports, so CI exercises every
//! x86 path on one AVX-512 machine.

use std::fmt;
use std::sync::OnceLock;

/// An instruction set a kernel is written for, ordered from weakest to strongest
/// within one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no intrinsics.
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512F (with AVX2 and FMA).
    Avx512,
    /// aarch64 Advanced SIMD.
    Neon,
}

/// The entry of a kernel registry for `isa`, or its scalar entry where this
/// CPU does not run `isa` or the registry has no kernel for it: the result
/// is always safe to run here.
///
/// # Panics
/// If the registry lists no scalar kernel (every one does).
pub(crate) fn kernel_for<T>(registry: &'static [T], isa: Isa, isa_of: fn(&T) -> Isa) -> &'static T {
    let isa = if isa.supported() { isa } else { Isa::Scalar };
    registry
        .iter()
        .find(|k| isa_of(k) == isa)
        .or_else(|| registry.iter().find(|k| isa_of(k) == Isa::Scalar))
        .expect("every kernel registry lists a scalar kernel")
}

impl Isa {
    /// Every ISA, weakest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The lower-case name used by `RECEPTIVE_MAX_ISA` and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as written by [`Isa::name`].
    pub fn parse(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == s.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run kernels written for `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The strongest ISA this CPU supports that is not above `cap`.
    ///
    /// `Scalar` caps every architecture; `Avx2`/`Avx512` cap x86 and `Neon`
    /// caps aarch64 (a cap naming the other architecture leaves the choice at
    /// the strongest supported one below it, i.e. scalar).
    pub fn best_up_to(cap: Isa) -> Isa {
        let order: &[Isa] = if cfg!(target_arch = "x86_64") {
            &[Isa::Avx512, Isa::Avx2]
        } else if cfg!(target_arch = "aarch64") {
            &[Isa::Neon]
        } else {
            &[]
        };
        order.iter().copied().find(|&i| i <= cap && i.supported()).unwrap_or(Isa::Scalar)
    }

    /// The ISA the library runs: the best supported one, capped by the
    /// environment variable `RECEPTIVE_MAX_ISA` when it is set. Detected once.
    ///
    /// An unknown value of the variable is ignored (with no cap), because
    /// detection must not fail; [`env_cap`] reports it.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| Isa::best_up_to(env_cap().ok().flatten().unwrap_or(Isa::Neon)))
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cap named by `RECEPTIVE_MAX_ISA`: `Ok(None)` when unset, `Err(value)`
/// when the value names no ISA.
pub fn env_cap() -> Result<Option<Isa>, String> {
    match std::env::var("RECEPTIVE_MAX_ISA") {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Isa::parse(&v).map(Some).ok_or(v),
    }
}

/// The ISA named by `RECEPTIVE_ENSURE_ISA`, if set: tests compare it with the
/// path that actually ran, so CI can never silently test a lower path.
pub fn env_ensure() -> Result<Option<Isa>, String> {
    match std::env::var("RECEPTIVE_ENSURE_ISA") {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Isa::parse(&v).map(Some).ok_or(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("AVX512"), Some(Isa::Avx512));
        assert_eq!(Isa::parse("sse"), None);
    }

    #[test]
    fn cap_never_raises() {
        assert_eq!(Isa::best_up_to(Isa::Scalar), Isa::Scalar);
        let best = Isa::best_up_to(Isa::Neon);
        assert!(best.supported());
        for cap in Isa::ALL {
            let got = Isa::best_up_to(cap);
            assert!(got.supported());
            assert!(got == Isa::Scalar || got <= cap);
        }
    }
}
