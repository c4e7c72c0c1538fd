//! CI sets `RECEPTIVE_ENSURE_ISA` beside `RECEPTIVE_MAX_ISA`: the run fails if
//! the path that runs is not the one requested, so a lower path is never
//! tested silently in its place.

use receptive::Isa;

#[test]
fn ensured_isa_is_the_active_one() {
    let ensure = receptive_kernels_env_ensure();
    if let Some(want) = ensure {
        assert_eq!(receptive::active_isa(), want, "RECEPTIVE_ENSURE_ISA={want} but {} runs", receptive::active_isa());
    }
}

fn receptive_kernels_env_ensure() -> Option<Isa> {
    let v = std::env::var("RECEPTIVE_ENSURE_ISA").ok().filter(|v| !v.is_empty())?;
    Some(Isa::parse(&v).unwrap_or_else(|| panic!("RECEPTIVE_ENSURE_ISA={v} names no ISA")))
}

#[test]
fn ensured_isa_is_the_sgemm_kernels() {
    let kernel = receptive::sgemm_kernel_info();
    assert_eq!(kernel.isa, receptive::active_isa(), "sgemm runs {} on a {} machine", kernel.name, kernel.isa);
    if let Some(want) = receptive_kernels_env_ensure() {
        assert_eq!(kernel.isa, want, "RECEPTIVE_ENSURE_ISA={want} but sgemm runs {}", kernel.name);
    }
}
