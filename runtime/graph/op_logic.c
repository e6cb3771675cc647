/* Comparisons (Equal, Less, ... -> bool), boolean logic (And, Or, Xor, Not), Where, IsNaN/IsInf
 * and the type conversions Cast and CastLike. Bools are one byte, 0 or 1. */
#include <math.h>
#include <string.h>

#include "runtime/graph/gx.h"

enum { C_EQ, C_LT, C_LE, C_GT, C_GE, C_AND, C_OR, C_XOR };

#define CROW(T, EXPR)                                                 \
    for (int64_t i = 0; i < n; i++) {                                 \
        T x = a[i * sa], y = b[i * sb];                               \
        o[i] = (uint8_t)(EXPR);                                       \
    }

#define CMP_ROW(T, NAME)                                                                                 \
    static void NAME(int op, const T *a, int64_t sa, const T *b, int64_t sb, uint8_t *o, int64_t n)     \
    {                                                                                                    \
        switch (op) {                                                                                    \
        case C_EQ: CROW(T, x == y) break;                                                                \
        case C_LT: CROW(T, x < y) break;                                                                 \
        case C_LE: CROW(T, x <= y) break;                                                                \
        case C_GT: CROW(T, x > y) break;                                                                 \
        case C_GE: CROW(T, x >= y) break;                                                                \
        case C_AND: CROW(T, (x != 0) & (y != 0)) break;                                                  \
        case C_OR: CROW(T, (x != 0) | (y != 0)) break;                                                   \
        default: CROW(T, (x != 0) ^ (y != 0)) break;                                                     \
        }                                                                                                \
    }

CMP_ROW(float, cmp_f32)
CMP_ROW(double, cmp_f64)
CMP_ROW(int64_t, cmp_i64)
CMP_ROW(int32_t, cmp_i32)
CMP_ROW(int16_t, cmp_i16)
CMP_ROW(int8_t, cmp_i8)
CMP_ROW(uint64_t, cmp_u64)
CMP_ROW(uint32_t, cmp_u32)
CMP_ROW(uint16_t, cmp_u16)
CMP_ROW(uint8_t, cmp_u8)

static smelt_err *compare(gx_call *c, int op)
{
    if (c->n_in != 2 || !c->in[0] || !c->in[1]) return gx_fail(c, "expected 2 inputs");
    const gx_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != b->dtype) return gx_fail(c, "inputs are %s and %s", smelt_dtype_name(a->dtype), smelt_dtype_name(b->dtype));
    if (op >= C_AND && a->dtype != SMELT_DT_BOOL) return gx_dtype_unsup(c, a->dtype);
    int nd;
    int64_t shape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, 2, c->in, &nd, shape));
    uint8_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_BOOL, nd, shape, (void **)&o));
    gx_bcast bc;
    gx_bcast_init(&bc, 2, c->in, nd, shape);
    int64_t sa = bc.strides[0][bc.ndim - 1] != 0, sb = bc.strides[1][bc.ndim - 1] != 0, n = bc.inner;
    for (int64_t r = 0; r < bc.rows; r++, gx_bcast_next(&bc)) {
        int64_t oa = bc.off[0], ob = bc.off[1];
        uint8_t *orow = o + r * n;
#define CASE(DT, T, FN) \
    case DT: FN(op, (const T *)a->data + oa, sa, (const T *)b->data + ob, sb, orow, n); break;
        switch (a->dtype) {
            CASE(SMELT_DT_F32, float, cmp_f32)
            CASE(SMELT_DT_F64, double, cmp_f64)
            CASE(SMELT_DT_I64, int64_t, cmp_i64)
            CASE(SMELT_DT_I32, int32_t, cmp_i32)
            CASE(SMELT_DT_I16, int16_t, cmp_i16)
            CASE(SMELT_DT_I8, int8_t, cmp_i8)
            CASE(SMELT_DT_U64, uint64_t, cmp_u64)
            CASE(SMELT_DT_U32, uint32_t, cmp_u32)
            CASE(SMELT_DT_U16, uint16_t, cmp_u16)
            CASE(SMELT_DT_U8, uint8_t, cmp_u8)
            CASE(SMELT_DT_BOOL, uint8_t, cmp_u8)
        default: return gx_dtype_unsup(c, a->dtype);
        }
#undef CASE
    }
    return NULL;
}

static smelt_err *k_equal(gx_call *c) { return compare(c, C_EQ); }
static smelt_err *k_less(gx_call *c) { return compare(c, C_LT); }
static smelt_err *k_less_eq(gx_call *c) { return compare(c, C_LE); }
static smelt_err *k_greater(gx_call *c) { return compare(c, C_GT); }
static smelt_err *k_greater_eq(gx_call *c) { return compare(c, C_GE); }
static smelt_err *k_and(gx_call *c) { return compare(c, C_AND); }
static smelt_err *k_or(gx_call *c) { return compare(c, C_OR); }
static smelt_err *k_xor(gx_call *c) { return compare(c, C_XOR); }

static smelt_err *k_not(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    if (a->dtype != SMELT_DT_BOOL) return gx_dtype_unsup(c, a->dtype);
    uint8_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_BOOL, a->ndim, a->shape, (void **)&o));
    const uint8_t *x = a->data;
    for (int64_t i = 0; i < a->numel; i++) o[i] = !x[i];
    return NULL;
}

static smelt_err *is_special(gx_call *c, bool inf)
{
    const gx_tensor *a = c->in[0];
    if (a->dtype != SMELT_DT_F32 && a->dtype != SMELT_DT_F64) return gx_dtype_unsup(c, a->dtype);
    bool neg = gx_attr_i(c->node, "detect_negative", 1), pos = gx_attr_i(c->node, "detect_positive", 1);
    uint8_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_BOOL, a->ndim, a->shape, (void **)&o));
    for (int64_t i = 0; i < a->numel; i++) {
        double x = gx_get_f(a, i);
        o[i] = inf ? (isinf(x) && ((x > 0 && pos) || (x < 0 && neg))) : isnan(x);
    }
    return NULL;
}

static smelt_err *k_isnan(gx_call *c) { return is_special(c, false); }
static smelt_err *k_isinf(gx_call *c) { return is_special(c, true); }

#define WROW(T)                                                                                     \
    do {                                                                                            \
        const T *x = (const T *)c->in[1]->data + bc.off[1], *y = (const T *)c->in[2]->data + bc.off[2]; \
        T *or_ = (T *)o + r * n;                                                                    \
        for (int64_t i = 0; i < n; i++) or_[i] = cond[i * s0] ? x[i * s1] : y[i * s2];              \
    } while (0)

static smelt_err *k_where(gx_call *c)
{
    if (c->n_in != 3 || !c->in[0] || !c->in[1] || !c->in[2]) return gx_fail(c, "expected 3 inputs");
    if (c->in[0]->dtype != SMELT_DT_BOOL) return gx_fail(c, "condition is %s, expected bool", smelt_dtype_name(c->in[0]->dtype));
    smelt_dtype dt = c->in[1]->dtype;
    if (c->in[2]->dtype != dt) return gx_fail(c, "inputs are %s and %s", smelt_dtype_name(dt), smelt_dtype_name(c->in[2]->dtype));
    int nd;
    int64_t shape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, 3, c->in, &nd, shape));
    void *o;
    SMELT_TRY(gx_out(c, 0, dt, nd, shape, &o));
    gx_bcast bc;
    gx_bcast_init(&bc, 3, c->in, nd, shape);
    int64_t s0 = bc.strides[0][bc.ndim - 1] != 0, s1 = bc.strides[1][bc.ndim - 1] != 0, s2 = bc.strides[2][bc.ndim - 1] != 0;
    int64_t n = bc.inner;
    int es = gx_esize(dt);
    for (int64_t r = 0; r < bc.rows; r++, gx_bcast_next(&bc)) {
        const uint8_t *cond = (const uint8_t *)c->in[0]->data + bc.off[0];
        switch (es) {
        case 1: WROW(uint8_t); break;
        case 2: WROW(uint16_t); break;
        case 4: WROW(uint32_t); break;
        case 8: WROW(uint64_t); break;
        default: return gx_dtype_unsup(c, dt);
        }
    }
    return NULL;
}

/* ---- Cast ---- */

static bool castable(smelt_dtype dt) { return dt != SMELT_DT_INVALID && dt != SMELT_DT_I4 && dt != SMELT_DT_U4 && dt < SMELT_DT_COUNT; }

/* Stores v (a double, finite or not) into element k of dst with C-style truncation for integers,
 * saturating out-of-range values rather than invoking undefined behaviour. */
static void store_f(void *dst, smelt_dtype dt, int64_t k, double v)
{
#define SAT(T, LO, HI) ((T)(isnan(v) ? 0 : v <= (LO) ? (LO) : v >= (HI) ? (HI) : v))
    switch (dt) {
    case SMELT_DT_F32: ((float *)dst)[k] = (float)v; break;
    case SMELT_DT_F64: ((double *)dst)[k] = v; break;
    case SMELT_DT_F16: ((uint16_t *)dst)[k] = smelt_f32_to_f16((float)v); break;
    case SMELT_DT_BF16: ((uint16_t *)dst)[k] = smelt_f32_to_bf16((float)v); break;
    case SMELT_DT_BOOL: ((uint8_t *)dst)[k] = v != 0; break;
    case SMELT_DT_I8: ((int8_t *)dst)[k] = SAT(int8_t, -128.0, 127.0); break;
    case SMELT_DT_U8: ((uint8_t *)dst)[k] = SAT(uint8_t, 0.0, 255.0); break;
    case SMELT_DT_I16: ((int16_t *)dst)[k] = SAT(int16_t, -32768.0, 32767.0); break;
    case SMELT_DT_U16: ((uint16_t *)dst)[k] = SAT(uint16_t, 0.0, 65535.0); break;
    case SMELT_DT_I32: ((int32_t *)dst)[k] = SAT(int32_t, -2147483648.0, 2147483647.0); break;
    case SMELT_DT_U32: ((uint32_t *)dst)[k] = SAT(uint32_t, 0.0, 4294967295.0); break;
    case SMELT_DT_I64: ((int64_t *)dst)[k] = SAT(int64_t, -9223372036854775808.0, 9223372036854774784.0); break;
    case SMELT_DT_U64: ((uint64_t *)dst)[k] = SAT(uint64_t, 0.0, 18446744073709549568.0); break;
    default: break;
    }
#undef SAT
}

/* Integer to integer (or bool) keeps every bit an int64 holds; wraps like a C conversion. */
static void store_i(void *dst, smelt_dtype dt, int64_t k, int64_t v)
{
    switch (dt) {
    case SMELT_DT_BOOL: ((uint8_t *)dst)[k] = v != 0; break;
    case SMELT_DT_I8: ((int8_t *)dst)[k] = (int8_t)(uint8_t)v; break;
    case SMELT_DT_U8: ((uint8_t *)dst)[k] = (uint8_t)v; break;
    case SMELT_DT_I16: ((int16_t *)dst)[k] = (int16_t)(uint16_t)v; break;
    case SMELT_DT_U16: ((uint16_t *)dst)[k] = (uint16_t)v; break;
    case SMELT_DT_I32: ((int32_t *)dst)[k] = (int32_t)(uint32_t)v; break;
    case SMELT_DT_U32: ((uint32_t *)dst)[k] = (uint32_t)v; break;
    case SMELT_DT_I64: ((int64_t *)dst)[k] = v; break;
    case SMELT_DT_U64: ((uint64_t *)dst)[k] = (uint64_t)v; break;
    default: store_f(dst, dt, k, (double)v); break;
    }
}

static smelt_err *cast_to(gx_call *c, smelt_dtype to)
{
    const gx_tensor *a = c->in[0];
    if (!castable(to)) return gx_unsup(c, "cast to dtype '%s' not supported", smelt_dtype_name(to));
    if (!castable(a->dtype)) return gx_dtype_unsup(c, a->dtype);
    if (a->dtype == to) return gx_alias(c, 0, 0, a->ndim, a->shape); /* nothing to convert: a view */
    void *o;
    SMELT_TRY(gx_out(c, 0, to, a->ndim, a->shape, &o));
    int64_t n = a->numel;
    if (smelt_convert_float(o, to, a->data, a->dtype, (size_t)n)) return NULL; /* f32/f16/bf16 pairs */
    bool from_int = !smelt_dtype_traits(a->dtype)->is_float;
    if (a->dtype == SMELT_DT_I64 && to == SMELT_DT_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)o)[i] = (float)((const int64_t *)a->data)[i];
    } else if (a->dtype == SMELT_DT_BOOL && to == SMELT_DT_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)o)[i] = ((const uint8_t *)a->data)[i] ? 1.0f : 0.0f;
    } else if (from_int && a->dtype != SMELT_DT_U64) {
        for (int64_t i = 0; i < n; i++) store_i(o, to, i, gx_get_i(a, i));
    } else {
        for (int64_t i = 0; i < n; i++) store_f(o, to, i, gx_get_f(a, i));
    }
    return NULL;
}

static smelt_err *k_cast(gx_call *c) { return cast_to(c, smelt_dtype_from_onnx((int)gx_attr_i(c->node, "to", 0))); }
static smelt_err *k_castlike(gx_call *c)
{
    if (c->n_in < 2 || !c->in[1]) return gx_fail(c, "expected 2 inputs");
    return cast_to(c, c->in[1]->dtype);
}

static smelt_err *check_cast(const smelt_node *n, int opset)
{
    int64_t to = gx_attr_i(n, "to", 0);
    smelt_dtype dt = smelt_dtype_from_onnx((int)to);
    if (!castable(dt)) return gx_node_unsup(n, "attribute 'to'=%lld not supported", (long long)to);
    if (gx_attr_i(n, "saturate", 1) != 1) return gx_node_unsup(n, "attribute 'saturate'=0 not supported");
    return NULL;
}

const gx_op gx_ops_logic[] = {
    {"Equal", k_equal, NULL},     {"Less", k_less, NULL},       {"LessOrEqual", k_less_eq, NULL},
    {"Greater", k_greater, NULL}, {"GreaterOrEqual", k_greater_eq, NULL},
    {"And", k_and, NULL},         {"Or", k_or, NULL},           {"Xor", k_xor, NULL},
    {"Not", k_not, NULL},         {"Where", k_where, NULL},     {"IsNaN", k_isnan, NULL},
    {"IsInf", k_isinf, NULL},     {"Cast", k_cast, check_cast}, {"CastLike", k_castlike, NULL},
    {NULL, NULL, NULL},
};
