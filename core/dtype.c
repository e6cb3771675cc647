/* dtype traits and float conversions. */
#include "core/dtype.h"

#include <string.h>

static const smelt_dtype_info traits[SMELT_DT_COUNT] = {
    [SMELT_DT_INVALID] = {"invalid", NULL, 0, 0, false},
    [SMELT_DT_F32] = {"f32", "F32", 1, 32, true},
    [SMELT_DT_F16] = {"f16", "F16", 10, 16, true},
    [SMELT_DT_BF16] = {"bf16", "BF16", 16, 16, true},
    [SMELT_DT_F64] = {"f64", "F64", 11, 64, true},
    [SMELT_DT_I8] = {"i8", "I8", 3, 8, false},
    [SMELT_DT_U8] = {"u8", "U8", 2, 8, false},
    [SMELT_DT_I16] = {"i16", "I16", 5, 16, false},
    [SMELT_DT_U16] = {"u16", "U16", 4, 16, false},
    [SMELT_DT_I32] = {"i32", "I32", 6, 32, false},
    [SMELT_DT_U32] = {"u32", "U32", 12, 32, false},
    [SMELT_DT_I64] = {"i64", "I64", 7, 64, false},
    [SMELT_DT_U64] = {"u64", "U64", 13, 64, false},
    [SMELT_DT_BOOL] = {"bool", "BOOL", 9, 8, false},
    [SMELT_DT_I4] = {"i4", NULL, 22, 4, false},
    [SMELT_DT_U4] = {"u4", NULL, 21, 4, false},
};

const smelt_dtype_info *smelt_dtype_traits(smelt_dtype dt)
{
    if ((int)dt <= 0 || dt >= SMELT_DT_COUNT) return &traits[SMELT_DT_INVALID];
    return &traits[dt];
}

const char *smelt_dtype_name(smelt_dtype dt) { return smelt_dtype_traits(dt)->name; }

smelt_dtype smelt_dtype_from_name(const char *name)
{
    for (int i = 1; i < SMELT_DT_COUNT; i++)
        if (strcmp(traits[i].name, name) == 0) return (smelt_dtype)i;
    return SMELT_DT_INVALID;
}

smelt_dtype smelt_dtype_from_safetensors(const char *name)
{
    for (int i = 1; i < SMELT_DT_COUNT; i++)
        if (traits[i].safetensors && strcmp(traits[i].safetensors, name) == 0) return (smelt_dtype)i;
    return SMELT_DT_INVALID;
}

smelt_dtype smelt_dtype_from_onnx(int onnx_type)
{
    for (int i = 1; i < SMELT_DT_COUNT; i++)
        if (traits[i].onnx == onnx_type) return (smelt_dtype)i;
    return SMELT_DT_INVALID;
}

size_t smelt_dtype_nbytes(smelt_dtype dt, uint64_t n)
{
    int bits = smelt_dtype_traits(dt)->bits;
    if (bits == 0) return SIZE_MAX;
    if (bits == 4) return (size_t)(n / 2 + (n & 1));
    uint64_t bytes = (uint64_t)bits / 8;
    if (n > SIZE_MAX / bytes) return SIZE_MAX;
    return (size_t)(n * bytes);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float smelt_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t smelt_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float smelt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t smelt_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu)); /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (abs < 0x38800000u) {
        /* result is subnormal or zero: value / 2^-24, rounded to nearest even */
        if (abs < 0x33000000u) return sign; /* below half the smallest subnormal */
        uint32_t exp = abs >> 23;
        uint32_t man = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - exp; /* 14..24 */
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent and round the 13 dropped mantissa bits */
    uint32_t r = abs - 0x38000000u; /* exponent 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

bool smelt_convert_float(void *dst, smelt_dtype dst_dt, const void *src, smelt_dtype src_dt, size_t n)
{
    if (!(src_dt == SMELT_DT_F32 || src_dt == SMELT_DT_F16 || src_dt == SMELT_DT_BF16)) return false;
    if (!(dst_dt == SMELT_DT_F32 || dst_dt == SMELT_DT_F16 || dst_dt == SMELT_DT_BF16)) return false;
    if (src_dt == dst_dt) {
        memmove(dst, src, smelt_dtype_nbytes(src_dt, n));
        return true;
    }
    const uint16_t *s16 = src;
    const float *s32 = src;
    uint16_t *d16 = dst;
    float *d32 = dst;
    for (size_t i = 0; i < n; i++) {
        float v = src_dt == SMELT_DT_F32 ? s32[i] : src_dt == SMELT_DT_F16 ? smelt_f16_to_f32(s16[i]) : smelt_bf16_to_f32(s16[i]);
        if (dst_dt == SMELT_DT_F32) d32[i] = v;
        else if (dst_dt == SMELT_DT_F16) d16[i] = smelt_f32_to_f16(v);
        else d16[i] = smelt_f32_to_bf16(v);
    }
    return true;
}
