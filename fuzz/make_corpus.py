#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/<name>: the seed's worked
examples and the known traps, encoded as `arbitrary` reads the targets'
input structs (fields in order; integers little-endian, bools one byte).
Run from anywhere: python3 fuzz/make_corpus.py"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MAX = 2**64 - 1


def size(v):
    """The `Size` encoding of fuzz/src/lib.rs."""
    if v < 128:
        return bytes([v])
    if v & (v - 1) == 0 and v < 2**64:
        return bytes([128 + v.bit_length() - 1])
    if MAX - v < 32:
        return bytes([192 + MAX - v])
    if 0 <= v - MAX // 2 < 16:
        return bytes([224 + v - MAX // 2])
    return bytes([240]) + struct.pack("<Q", v)


def u8s(*vs):
    return bytes(v & 0xFF for v in vs)


def u64(v):
    return struct.pack("<Q", v)


def params(shape=(1, 3, 32, 32), cin=3, cout=10, kernel=(5, 5), stride=(1, 1), dilation=(1, 1), pad=(0, 0, 0, 0),
           groups=1, strict=0, avg=0, ceil=0, cip=1, divisor=0):
    b = b"".join(size(v) for v in (*shape, cin, cout, *kernel, *stride, *dilation, *pad, groups))
    return b + u8s(strict, avg, ceil, cip) + size(divisor)


def conv(n=1, cpg=3, kpg=10, groups=1, h=32, w=32, kh=5, kw=5, sh=1, sw=1, dh=1, dw=1, pad=(0, 0, 0, 0), bias=1,
         act=0, specials=0, wrong_len=0, seed=1):
    # Inverse of the target's mapping: n = 1 + byte % 3, groups = byte % 5, ...
    return u8s(n - 1, cpg, kpg, groups, h, w, kh, kw, sh, sw, dh, dw, *pad, bias, act, specials, wrong_len) + u64(seed)


def pool(kind=0, n=1, c=2, h=12, w=12, kh=3, kw=3, sh=2, sw=2, dh=0, dw=0, pad=(1, 1, 1, 1), ceil=0, cip=1,
         divisor=0, specials=0, wrong_len=0, seed=1):
    # kind 0 max, 1 avg, 2 global max, 3 global avg; dilation = 1 + byte % 3 (max only).
    return u8s(kind, n, c, h, w, kh, kw, sh, sw, dh, dw, *pad, ceil, cip, divisor, specials, wrong_len) + u64(seed)


def sgemm(m=4, n=4, k=4, layout=(0, 0, 0), short=(0x80, 0x80, 0x80), alpha=0, beta=1, bias=0, act=0, specials=0,
          seed=1):
    # alpha (mod 7) / beta (mod 8) index [1, 0, -1, 0.5, 2, -0.375, NaN, inf]; layout bit 0 column-major,
    # bits 1..3 ld padding.
    return u8s(m, n, k, *layout, *short, alpha, beta, bias, act, specials) + u64(seed)


def bwd(op=0, n=1, cpg=2, kpg=3, groups=1, h=9, w=9, kh=3, kw=3, sh=1, sw=1, dh=1, dw=1, pad=(1, 1, 1, 1),
        out_pad=(0, 0), bias=1, ceil=0, cip=1, divisor=0, specials=0, wrong_len=0, bad_index=0, index=0, seed=1):
    # op 0 dX (plan and one-shot), 1 dW, 2 db, 3 transposed conv, 4 max pool dX, 5 avg pool dX;
    # pooling reads c from cpg, dilation = 1 + byte % 3 (max only).
    return (u8s(op, n, cpg, kpg, groups, h, w, kh, kw, sh, sw, dh, dw, *pad, *out_pad, bias, ceil, cip, divisor,
                specials, wrong_len, bad_index) + struct.pack("<q", index) + u64(seed))


SEEDS = {
    "params": {
        "seed_32x32x3_ten_5x5_pad2": params(pad=(2, 2, 2, 2)),
        "seed_28x28x6_no_pad": params(cout=6),
        "seed_7x7_3x3_stride2_strict": params(shape=(1, 1, 7, 7), cin=1, cout=1, kernel=(3, 3), stride=(2, 2), strict=1),
        "seed_7x7_3x3_stride3_does_not_fit": params(shape=(1, 1, 7, 7), cin=1, cout=1, kernel=(3, 3), stride=(3, 3),
                                                   strict=1),
        "kernel_larger_than_padded_input": params(shape=(1, 1, 3, 3), cin=1, cout=1, kernel=(5, 5), pad=(0, 1, 0, 1)),
        "dilated_kernel_too_large": params(shape=(1, 1, 5, 5), cin=1, cout=1, kernel=(5, 5), dilation=(2, 2)),
        "groups_not_dividing_channels": params(shape=(1, 4, 8, 8), cin=4, cout=6, kernel=(3, 3), groups=4),
        "groups_zero": params(shape=(1, 4, 8, 8), cin=4, cout=4, kernel=(3, 3), groups=0),
        "zero_stride_kernel_dilation": params(kernel=(0, 3), stride=(1, 0), dilation=(0, 1)),
        "zero_batch_and_height": params(shape=(0, 3, 0, 32)),
        "huge_batch_and_height_overflow": params(shape=(MAX, 3, MAX // 2, 8), kernel=(1, 1)),
        "huge_dilation_overflow": params(shape=(1, 3, 8, 8), kernel=(3, 3), dilation=(MAX, 1)),
        "huge_padding_overflow": params(shape=(1, 3, 8, 8), kernel=(1, 1), pad=(MAX, MAX, 0, 0)),
        "huge_channels_weight_overflow": params(shape=(1, 2**40, 8, 8), cin=2**40, cout=2**40, kernel=(2**20, 1)),
        "flops_overflow": params(shape=(2**62, 3, 2, 1), kernel=(1, 1)),
        "raw_large_sizes": params(shape=(3, 3, 123456789012, 7), kernel=(3, 3), stride=(987654321, 1)),
        "pool_pad_over_half_window": params(shape=(1, 2, 5, 5), kernel=(2, 2), stride=(2, 2), pad=(2, 2, 2, 2)),
        "pool_pad_after_over_half": params(shape=(1, 2, 5, 5), kernel=(3, 3), stride=(3, 3), pad=(0, 2, 0, 0)),
        "pool_ceil_last_window_in_padding": params(shape=(1, 1, 5, 5), kernel=(2, 2), stride=(2, 2),
                                                   pad=(1, 1, 1, 1), ceil=1),
        "pool_ceil_avg_1x5_window_1x2": params(shape=(1, 1, 1, 5), kernel=(1, 2), stride=(1, 2), avg=1, ceil=1),
        "pool_dilated_window_misses_input": params(shape=(1, 1, 1, 1), kernel=(1, 2), stride=(1, 1), dilation=(1, 3),
                                                   pad=(0, 0, 2, 2)),
        "pool_avg_with_dilation": params(shape=(1, 2, 5, 5), kernel=(2, 2), dilation=(2, 2), avg=1),
        "pool_divisor_override_on_max": params(shape=(1, 2, 5, 5), kernel=(2, 2), divisor=3),
        "pool_huge_dilation_and_padding": params(shape=(1, 1, 2**40, 3 * 2**20), kernel=(3, 3),
                                                 dilation=(2**20, 2**20), pad=(2**20,) * 4),
    },
    "conv2d": {
        "seed_32x32x3_ten_5x5_pad2": conv(pad=(2, 2, 2, 2)),
        "seed_28x28x6_no_pad": conv(kpg=6, bias=0),
        "seed_7x7_3x3_stride3": conv(cpg=1, kpg=1, h=7, w=7, kh=3, kw=3, sh=3, sw=3),
        "one_by_one_plain_gemm": conv(n=2, cpg=4, kpg=5, h=9, w=7, kh=1, kw=1),
        "depthwise": conv(cpg=1, kpg=1, groups=4, h=13, w=11, kh=3, kw=3, pad=(1, 1, 1, 1)),
        "channel_multiplier": conv(cpg=1, kpg=2, groups=3, h=10, w=10, kh=3, kw=3, sh=2, sw=2, pad=(1, 1, 1, 1)),
        "grouped_asymmetric_dilated": conv(n=2, cpg=2, kpg=3, groups=2, h=19, w=23, kh=3, kw=5, sh=1, sw=2, dh=2,
                                           dw=1, pad=(0, 2, 1, 3), act=2),
        "kernel_larger_than_input": conv(cpg=1, kpg=1, h=3, w=3, kh=5, kw=5),
        "groups_zero": conv(groups=0),
        "zero_height": conv(h=0),
        "input_one_too_long": conv(wrong_len=3),
        "weights_one_too_short": conv(wrong_len=0x81),
        "unused_bias_wrong_length": conv(bias=0, wrong_len=2),
        "nan_and_inf_input_relu": conv(h=12, w=12, specials=1, act=1, pad=(1, 1, 1, 1), kh=3, kw=3),
        "invalid_clamp_bounds": conv(act=3),
    },
    "pool2d": {
        "r50_maxpool_small": pool(),
        "max_2x2_stride2": pool(h=16, w=16, kh=2, kw=2, pad=(0, 0, 0, 0)),
        "max_dilated_ceil": pool(h=11, w=9, dh=1, dw=2, ceil=1, pad=(1, 0, 1, 1)),
        "max_nan_and_inf": pool(specials=1, h=13, w=17),
        "avg_ceil_trap_1x5_window_1x2": pool(kind=1, c=1, h=1, w=5, kh=1, kw=2, sh=1, sw=2, pad=(0, 0, 0, 0), ceil=1),
        "avg_exclude_pad": pool(kind=1, h=7, w=7, kh=3, kw=3, sh=1, sw=1, cip=0),
        "avg_divisor_override": pool(kind=1, h=6, w=6, divisor=3),
        "avg_ceil_last_window_in_padding": pool(kind=1, h=5, w=5, kh=2, kw=2, ceil=1),
        "global_max_nan": pool(kind=2, c=4, h=7, w=7, specials=1),
        "global_avg": pool(kind=3, c=4, h=7, w=7),
        "pad_over_half_window": pool(kh=2, kw=2, pad=(2, 2, 2, 2)),
        "zero_batch": pool(n=0),
        "input_one_too_short": pool(wrong_len=1),
        "kernel_larger_than_input": pool(h=2, w=2, kh=5, kw=5, pad=(0, 0, 0, 0)),
    },
    "sgemm": {
        "square_4": sgemm(),
        "transposed_a_padded_ld": sgemm(m=7, n=13, k=9, layout=(1, 4, 6), alpha=3, beta=2),
        "column_major_c_bias_per_col": sgemm(m=17, n=5, k=33, layout=(0, 1, 1), bias=2, act=1),
        "k_zero_beta_zero_nan_c": sgemm(m=5, n=6, k=0, beta=1, specials=1),
        "beta_zero_ignores_nan_c": sgemm(m=9, n=9, k=9, beta=1, specials=1, seed=7),
        "long_k_single_output": sgemm(m=1, n=1, k=69),
        "edge_tiles": sgemm(m=15, n=33, k=17, bias=1, act=2),
        "a_one_element_short": sgemm(short=(1, 0x80, 0x80)),
        "c_three_short": sgemm(short=(0x80, 0x80, 3)),
        "bias_wrong_length": sgemm(bias=3),
        "invalid_clamp": sgemm(act=3),
        "alpha_nan": sgemm(alpha=6),
        "beta_inf_alpha_half": sgemm(alpha=3, beta=7),
        # The crash-8c4a00a7 input (alpha inf then; 255 % 7 picks 0.5 now): denormal products.
        "denormal_products": sgemm(m=33, n=36, k=1, layout=(22, 0, 4), short=(0, 0, 0), alpha=255, beta=0, bias=22,
                                   specials=1, seed=1262720417281),
        "empty_m": sgemm(m=0),
    },
    "backward": {
        "data_3x3_pad1": bwd(),
        "data_stride2_dilated_grouped": bwd(n=2, groups=2, h=11, w=10, sh=2, sw=2, dh=2, dw=1, pad=(0, 2, 1, 3)),
        "data_depthwise_nan_inf": bwd(cpg=1, kpg=1, groups=4, h=13, w=11, specials=1),
        "data_stride_skips_inputs": bwd(cpg=1, kpg=1, h=7, w=7, kh=1, kw=1, sh=3, sw=3, pad=(0, 0, 0, 0)),
        "data_dx_buffer_one_short": bwd(wrong_len=0x82),
        "data_dy_one_row_too_many": bwd(wrong_len=3),
        "data_weights_one_too_long": bwd(wrong_len=1),
        "data_groups_zero": bwd(groups=0),
        "weights_3x3_pad1": bwd(op=1, n=2),
        "weights_1x1_plain_gemm": bwd(op=1, cpg=4, kpg=5, h=9, w=7, kh=1, kw=1, pad=(0, 0, 0, 0)),
        "weights_nan_inf_input": bwd(op=1, specials=1, sh=2, sw=2),
        "weights_dy_one_short": bwd(op=1, wrong_len=0x81),
        "bias_grad": bwd(op=2, n=2, kpg=5),
        "bias_zero_batch": bwd(op=2, n=0),
        "bias_dy_one_too_long": bwd(op=2, wrong_len=4),
        "transpose_stride2_output_padding": bwd(op=3, h=5, w=6, sh=2, sw=2, out_pad=(1, 1)),
        "transpose_output_padding_not_below_stride": bwd(op=3, h=5, w=5, sh=2, sw=2, out_pad=(2, 0)),
        "transpose_grouped_dilated": bwd(op=3, n=2, groups=2, h=6, w=7, sh=2, sw=3, dh=2, dw=1, pad=(2, 0, 1, 1),
                                         out_pad=(1, 2)),
        "transpose_nan_inf": bwd(op=3, specials=1, pad=(0, 0, 0, 0)),
        "transpose_bias_one_short": bwd(op=3, wrong_len=0x82),
        "transpose_padding_eats_output": bwd(op=3, h=1, w=1, kh=1, kw=1, pad=(1, 1, 0, 0)),
        "maxpool_r50_overlapping": bwd(op=4, h=12, w=12, sh=2, sw=2, dh=0, dw=0),
        "maxpool_dilated_ceil_nan": bwd(op=4, h=11, w=9, dh=1, dw=2, ceil=1, pad=(1, 0, 1, 1), specials=1),
        "maxpool_index_negative": bwd(op=4, bad_index=1, index=-1),
        "maxpool_index_one_past_plane": bwd(op=4, h=12, w=12, bad_index=3, index=144),
        "maxpool_index_i64_max": bwd(op=4, bad_index=200, index=2**63 - 1),
        "maxpool_index_in_plane_outside_window": bwd(op=4, bad_index=1, index=143, h=12, w=12),
        "maxpool_indices_one_short": bwd(op=4, wrong_len=0x81),
        "avgpool_ceil_trap_1x5_window_1x2": bwd(op=5, cpg=1, h=1, w=5, kh=1, kw=2, sh=1, sw=2, pad=(0, 0, 0, 0),
                                                ceil=1),
        "avgpool_exclude_pad": bwd(op=5, h=7, w=7, cip=0),
        "avgpool_divisor_override": bwd(op=5, h=6, w=6, sh=2, sw=2, divisor=3),
        "avgpool_pad_over_half_window": bwd(op=5, kh=2, kw=2, pad=(2, 2, 2, 2)),
        "avgpool_dy_one_too_long": bwd(op=5, wrong_len=4),
    },
}

for target, seeds in SEEDS.items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print(sum(len(s) for s in SEEDS.values()), "seeds written under", ROOT)
