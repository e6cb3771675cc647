/* f16/bf16 <-> f32 conversion on edge values: rounding to nearest even, NaN, infinities,
 * subnormals, overflow; and dtype traits. Expected bit patterns are from the IEEE 754 definitions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/dtype.h"

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t u_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void f16_exact_values(void **state)
{
    (void)state;
    assert_int_equal(smelt_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(smelt_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(smelt_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(smelt_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(smelt_f32_to_f16(65504.0f), 0x7bff);            /* largest finite */
    assert_int_equal(smelt_f32_to_f16(6.103515625e-05f), 0x0400);    /* smallest normal */
    assert_int_equal(smelt_f32_to_f16(5.9604644775390625e-08f), 0x0001); /* smallest subnormal */
    assert_int_equal(smelt_f32_to_f16(f_of(0x7f800000)), 0x7c00);    /* +inf */
    assert_int_equal(smelt_f32_to_f16(f_of(0xff800000)), 0xfc00);    /* -inf */
}

static void f16_rounding(void **state)
{
    (void)state;
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even -> 1.0 */
    assert_int_equal(smelt_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    /* 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even) -> up */
    assert_int_equal(smelt_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    /* just above half rounds up */
    assert_int_equal(smelt_f32_to_f16(f_of(u_of(1.0f + 0x1p-11f) + 1)), 0x3c01);
    /* overflow: 65520 is the first value that rounds to inf; 65519 stays finite */
    assert_int_equal(smelt_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(smelt_f32_to_f16(65519.0f), 0x7bff);
    /* subnormal ties: 2^-25 is half the smallest subnormal -> 0 (even); 3*2^-25 -> 2 (even) */
    assert_int_equal(smelt_f32_to_f16(0x1p-25f), 0x0000);
    assert_int_equal(smelt_f32_to_f16(3 * 0x1p-25f), 0x0002);
    assert_int_equal(smelt_f32_to_f16(0x1p-26f), 0x0000);
    /* the largest subnormal rounds up into the smallest normal */
    assert_int_equal(smelt_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);
}

static void f16_nan_and_roundtrip(void **state)
{
    (void)state;
    uint16_t h = smelt_f32_to_f16(f_of(0x7fc00000));
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0);
    h = smelt_f32_to_f16(f_of(0xff800001)); /* signalling NaN payload in low bits only */
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0 && (h & 0x8000));
    assert_true(isnan(smelt_f16_to_f32(0x7e00)));
    assert_true(isinf(smelt_f16_to_f32(0xfc00)) && smelt_f16_to_f32(0xfc00) < 0);
    assert_true(smelt_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(smelt_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_int_equal(u_of(smelt_f16_to_f32(0x8000)), 0x80000000);
    /* every non-NaN f16 survives f16 -> f32 -> f16 */
    for (uint32_t i = 0; i < 65536; i++) {
        if ((i & 0x7c00) == 0x7c00 && (i & 0x3ff)) continue;
        assert_int_equal(smelt_f32_to_f16(smelt_f16_to_f32((uint16_t)i)), i);
    }
}

static void bf16_values(void **state)
{
    (void)state;
    assert_int_equal(smelt_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(smelt_f32_to_bf16(-0.0f), 0x8000);
    /* ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1 */
    assert_int_equal(smelt_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(smelt_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    /* the largest finite f32 rounds to inf in bf16 */
    assert_int_equal(smelt_f32_to_bf16(f_of(0x7f7fffff)), 0x7f80);
    assert_int_equal(smelt_f32_to_bf16(f_of(0xff800000)), 0xff80);
    /* NaN whose payload lives only in the dropped bits must stay NaN */
    uint16_t b = smelt_f32_to_bf16(f_of(0x7f800001));
    assert_true((b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0);
    /* subnormals are kept */
    assert_int_equal(smelt_f32_to_bf16(f_of(0x00010000)), 0x0001);
    for (uint32_t i = 0; i < 65536; i++) {
        if ((i & 0x7f80) == 0x7f80 && (i & 0x7f)) continue;
        assert_int_equal(smelt_f32_to_bf16(smelt_bf16_to_f32((uint16_t)i)), i);
    }
}

static void traits(void **state)
{
    (void)state;
    assert_int_equal(smelt_dtype_from_safetensors("BF16"), SMELT_DT_BF16);
    assert_int_equal(smelt_dtype_from_safetensors("F8_E4M3"), SMELT_DT_INVALID);
    assert_int_equal(smelt_dtype_from_onnx(1), SMELT_DT_F32);
    assert_int_equal(smelt_dtype_from_onnx(7), SMELT_DT_I64);
    assert_int_equal(smelt_dtype_from_name("i4"), SMELT_DT_I4);
    assert_int_equal(smelt_dtype_nbytes(SMELT_DT_U4, 7), 4);
    assert_int_equal(smelt_dtype_nbytes(SMELT_DT_BF16, 3), 6);
    assert_true(smelt_dtype_nbytes(SMELT_DT_I64, UINT64_MAX / 4) == SIZE_MAX);
    float src[3] = {1.5f, -2.25f, 1e-3f}, back[3];
    uint16_t h[3];
    assert_true(smelt_convert_float(h, SMELT_DT_F16, src, SMELT_DT_F32, 3));
    assert_true(smelt_convert_float(back, SMELT_DT_F32, h, SMELT_DT_F16, 3));
    assert_true(back[0] == 1.5f && back[1] == -2.25f && fabsf(back[2] - 1e-3f) < 1e-6f);
    assert_false(smelt_convert_float(h, SMELT_DT_I8, src, SMELT_DT_F32, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_exact_values), cmocka_unit_test(f16_rounding), cmocka_unit_test(f16_nan_and_roundtrip),
        cmocka_unit_test(bf16_values),      cmocka_unit_test(traits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
