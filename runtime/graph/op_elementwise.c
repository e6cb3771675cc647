/* Elementwise arithmetic: numpy-broadcast binary ops (Add, Sub, Mul, Div, Pow, Mod, PRelu,
 * BitShift, Bitwise*), their variadic forms (Sum, Mean, Max, Min), and unary math and activations
 * (Exp ... Gelu, Clip). Loops are generated per element type by macros; the op is chosen by a
 * switch outside each loop, never per element. Float math runs in the element type (f32 in f32). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "runtime/graph/gx.h"

/* The integer loops are generated for signed and unsigned types alike; sign tests on unsigned
 * types are constant false there, which is what is wanted. */
#pragma GCC diagnostic ignored "-Wtype-limits"

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_MOD, B_FMOD, B_PRELU, B_SHL, B_SHR, B_AND, B_OR, B_XOR };

/* One row: o[i] = a[i*sa] OP b[i*sb], with sa, sb in {0, 1}; x and y are the operands. */
#define ROW(T, EXPR)                                                             \
    do {                                                                         \
        if (sa && sb)                                                            \
            for (int64_t i = 0; i < n; i++) {                                    \
                T x = a[i], y = b[i];                                            \
                o[i] = (EXPR);                                                   \
            }                                                                    \
        else if (sa) {                                                           \
            T y = b[0];                                                          \
            for (int64_t i = 0; i < n; i++) {                                    \
                T x = a[i];                                                      \
                o[i] = (EXPR);                                                   \
            }                                                                    \
        } else if (sb) {                                                         \
            T x = a[0];                                                          \
            for (int64_t i = 0; i < n; i++) {                                    \
                T y = b[i];                                                      \
                o[i] = (EXPR);                                                   \
            }                                                                    \
        } else {                                                                 \
            T x = a[0], y = b[0];                                                \
            for (int64_t i = 0; i < n; i++) o[i] = (EXPR);                       \
        }                                                                        \
    } while (0)

#define FLOAT_ROW(T, NAME, POW, FMOD)                                                                     \
    static void NAME(int op, const T *a, int64_t sa, const T *b, int64_t sb, T *o, int64_t n)            \
    {                                                                                                     \
        switch (op) {                                                                                     \
        case B_ADD: ROW(T, x + y); break;                                                                 \
        case B_SUB: ROW(T, x - y); break;                                                                 \
        case B_MUL: ROW(T, x * y); break;                                                                 \
        case B_DIV: ROW(T, x / y); break;                                                                 \
        case B_POW: /* x^2 (RMSNorm's square) is exactly x * x, vectorized; pow is a call an element */  \
            if (!sb && b[0] == 2) ROW(T, ((void)y, x * x));                                                \
            else ROW(T, POW(x, y));                                                                       \
            break;                                                                                        \
        case B_MAX: ROW(T, isnan(x) || isnan(y) ? (T)NAN : (x > y ? x : y)); break;                       \
        case B_MIN: ROW(T, isnan(x) || isnan(y) ? (T)NAN : (x < y ? x : y)); break;                       \
        case B_FMOD: ROW(T, FMOD(x, y)); break;                                                           \
        case B_MOD: ROW(T, FMOD(x, y) != 0 && ((FMOD(x, y) < 0) != (y < 0)) ? FMOD(x, y) + y : FMOD(x, y)); break; \
        case B_PRELU: ROW(T, x < 0 ? x * y : x); break;                                                   \
        default: break;                                                                                   \
        }                                                                                                 \
    }

FLOAT_ROW(float, row_f32, powf, fmodf)
FLOAT_ROW(double, row_f64, pow, fmod)

/* Integers wrap (computed unsigned, as ONNX Runtime's two's complement results); division by zero
 * gives 0 rather than a trap. */
static int64_t ipow(int64_t x, int64_t y)
{
    if (y < 0) return x == 1 ? 1 : (x == -1 ? (y % 2 ? -1 : 1) : 0);
    uint64_t r = 1, b = (uint64_t)x;
    while (y) {
        if (y & 1) r *= b;
        b *= b;
        y >>= 1;
    }
    return (int64_t)r;
}

#define INT_ROW(T, U, NAME)                                                                                   \
    static void NAME(int op, const T *a, int64_t sa, const T *b, int64_t sb, T *o, int64_t n)                \
    {                                                                                                         \
        switch (op) {                                                                                         \
        case B_ADD: ROW(T, (T)((U)x + (U)y)); break;                                                          \
        case B_SUB: ROW(T, (T)((U)x - (U)y)); break;                                                          \
        case B_MUL: ROW(T, (T)((U)x * (U)y)); break;                                                          \
        case B_DIV: ROW(T, y == 0 ? (T)0 : ((T)-1 < 0 && y == (T)-1) ? (T)(0 - (U)x) : (T)(x / y)); break;    \
        case B_POW: ROW(T, (T)ipow((int64_t)x, (int64_t)y)); break;                                           \
        case B_MAX: ROW(T, x > y ? x : y); break;                                                             \
        case B_MIN: ROW(T, x < y ? x : y); break;                                                             \
        case B_FMOD: ROW(T, y == 0 || ((T)-1 < 0 && y == (T)-1) ? (T)0 : (T)(x % y)); break;                  \
        case B_MOD: ROW(T, y == 0 || ((T)-1 < 0 && y == (T)-1) ? (T)0 : (T)((x % y != 0 && ((x % y < 0) != (y < 0))) ? x % y + y : x % y)); break; \
        case B_PRELU: ROW(T, x < 0 ? (T)((U)x * (U)y) : x); break;                                            \
        case B_SHL: ROW(T, (uint64_t)y >= sizeof(T) * 8 ? (T)0 : (T)((U)x << y)); break;                      \
        case B_SHR: ROW(T, (uint64_t)y >= sizeof(T) * 8 ? (T)0 : (T)((U)x >> y)); break;                      \
        case B_AND: ROW(T, (T)(x & y)); break;                                                                \
        case B_OR: ROW(T, (T)(x | y)); break;                                                                 \
        case B_XOR: ROW(T, (T)(x ^ y)); break;                                                                \
        default: break;                                                                                       \
        }                                                                                                     \
    }

INT_ROW(int64_t, uint64_t, row_i64)
INT_ROW(int32_t, uint32_t, row_i32)
INT_ROW(int16_t, uint16_t, row_i16)
INT_ROW(int8_t, uint8_t, row_i8)
INT_ROW(uint64_t, uint64_t, row_u64)
INT_ROW(uint32_t, uint32_t, row_u32)
INT_ROW(uint16_t, uint16_t, row_u16)
INT_ROW(uint8_t, uint8_t, row_u8)

static bool op_ok(int op, smelt_dtype dt)
{
    bool fl = dt == SMELT_DT_F32 || dt == SMELT_DT_F64;
    bool in = !fl && dt != SMELT_DT_BOOL && dt != SMELT_DT_F16 && dt != SMELT_DT_BF16 && dt != SMELT_DT_I4 && dt != SMELT_DT_U4;
    if (op >= B_SHL) return in;
    return fl || in;
}

/* Rows [begin, end) of the broadcast walk; a single row (same shapes, or a scalar operand) is cut
 * into pieces of BIN_PIECE elements so it can be shared out too. */
#define BIN_PIECE 8192
typedef struct {
    int op;
    const gx_tensor *a, *b;
    gx_tensor *o;
    gx_bcast bc;
    int64_t pieces; /* per row */
} binary_job;

static void binary_rows(void *ctx, int64_t begin, int64_t end)
{
    const binary_job *j = ctx;
    int op = j->op;
    const gx_tensor *a = j->a, *b = j->b, *o = j->o;
    gx_bcast bc = j->bc;
    int64_t sa = bc.strides[0][bc.ndim - 1] != 0, sb = bc.strides[1][bc.ndim - 1] != 0;
    int64_t r = begin / j->pieces;
    gx_bcast_seek(&bc, r);
    for (int64_t p = begin; p < end; p++) {
        if (p / j->pieces != r) {
            r = p / j->pieces;
            gx_bcast_seek(&bc, r);
        }
        int64_t i0 = (p % j->pieces) * BIN_PIECE, n = bc.inner - i0 < BIN_PIECE ? bc.inner - i0 : BIN_PIECE;
        if (j->pieces == 1) i0 = 0, n = bc.inner;
        int64_t oo = r * bc.inner + i0, oa = bc.off[0] + i0 * sa, ob = bc.off[1] + i0 * sb;
#define CASE(DT, T, FN) \
    case DT: FN(op, (const T *)a->data + oa, sa, (const T *)b->data + ob, sb, (T *)o->data + oo, n); break;
        switch (o->dtype) {
            CASE(SMELT_DT_F32, float, row_f32)
            CASE(SMELT_DT_F64, double, row_f64)
            CASE(SMELT_DT_I64, int64_t, row_i64)
            CASE(SMELT_DT_I32, int32_t, row_i32)
            CASE(SMELT_DT_I16, int16_t, row_i16)
            CASE(SMELT_DT_I8, int8_t, row_i8)
            CASE(SMELT_DT_U64, uint64_t, row_u64)
            CASE(SMELT_DT_U32, uint32_t, row_u32)
            CASE(SMELT_DT_U16, uint16_t, row_u16)
            CASE(SMELT_DT_U8, uint8_t, row_u8)
        default: break;
        }
#undef CASE
    }
}

/* o = a OP b over the broadcast shape of out (a and b of out's dtype; o may be a). */
static void binary_apply(int op, const gx_tensor *a, const gx_tensor *b, gx_tensor *o)
{
    const gx_tensor *ins[2] = {a, b};
    binary_job j = {op, a, b, o, {0}, 1};
    gx_bcast_init(&j.bc, 2, ins, o->ndim, o->shape);
    if (j.bc.rows < 4 && j.bc.inner > 2 * BIN_PIECE) j.pieces = (j.bc.inner + BIN_PIECE - 1) / BIN_PIECE;
    int64_t per = j.pieces > 1 ? BIN_PIECE : j.bc.inner;
    gx_parallel(j.bc.rows * j.pieces, per + 1, binary_rows, &j);
}

/* Pow with an exponent of another type: computed in double, stored in the base's type. */
static smelt_err *pow_mixed(gx_call *c)
{
    const gx_tensor *a = c->in[0], *b = c->in[1];
    int nd;
    int64_t shape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, 2, c->in, &nd, shape));
    if (a->dtype != SMELT_DT_F32 && a->dtype != SMELT_DT_F64 && a->dtype != SMELT_DT_I32 && a->dtype != SMELT_DT_I64)
        return gx_dtype_unsup(c, a->dtype);
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, nd, shape, &o));
    gx_bcast bc;
    gx_bcast_init(&bc, 2, c->in, nd, shape);
    int64_t sa = bc.strides[0][bc.ndim - 1], sb = bc.strides[1][bc.ndim - 1];
    for (int64_t r = 0; r < bc.rows; r++, gx_bcast_next(&bc))
        for (int64_t i = 0; i < bc.inner; i++) {
            int64_t k = r * bc.inner + i;
            double x = gx_get_f(a, bc.off[0] + i * sa), y = gx_get_f(b, bc.off[1] + i * sb);
            switch (a->dtype) {
            case SMELT_DT_F32: ((float *)o)[k] = (float)pow(x, y); break;
            case SMELT_DT_F64: ((double *)o)[k] = pow(x, y); break;
            case SMELT_DT_I32: ((int32_t *)o)[k] = (int32_t)ipow((int64_t)x, (int64_t)y); break;
            default: ((int64_t *)o)[k] = ipow((int64_t)x, (int64_t)y); break;
            }
        }
    return NULL;
}

/* Binary and variadic ops: folds inputs left to right into the output. */
static smelt_err *nary(gx_call *c, int op)
{
    int nin = 0;
    for (int k = 0; k < c->n_in; k++)
        if (c->in[k]) nin++;
    if (nin != c->n_in || nin == 0) return gx_fail(c, "expected %d inputs, got %d", c->n_in, nin);
    smelt_dtype dt = c->in[0]->dtype;
    if (op == B_POW && c->in[1]->dtype != dt) return pow_mixed(c);
    for (int k = 1; k < nin; k++)
        if (c->in[k]->dtype != dt)
            return gx_fail(c, "input %d is %s, input 0 is %s", k, smelt_dtype_name(c->in[k]->dtype), smelt_dtype_name(dt));
    if (!op_ok(op, dt)) return gx_dtype_unsup(c, dt);
    int nd = 0;
    int64_t shape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, nin, c->in, &nd, shape));
    SMELT_TRY(gx_out(c, 0, dt, nd, shape, NULL));
    gx_tensor *o = c->out[0];
    if (nin == 1) {
        const gx_tensor *ins[1] = {c->in[0]};
        gx_bcast bc;
        gx_bcast_init(&bc, 1, ins, nd, shape);
        size_t es = (size_t)gx_esize(dt);
        for (int64_t r = 0; r < bc.rows; r++, gx_bcast_next(&bc))
            memcpy((char *)o->data + (size_t)(r * bc.inner) * es, (const char *)c->in[0]->data + (size_t)bc.off[0] * es, (size_t)bc.inner * es);
        return NULL;
    }
    const gx_tensor *b = c->in[1];
    if (nin == 2 && op == B_POW && dt == SMELT_DT_F32 && b->numel == 1 && ((const float *)b->data)[0] == 2.0f) {
        /* x^2 (RMSNorm's variance): x * x is what powf gives, without the libm call */
        const float *x = c->in[0]->data;
        float *y = o->data;
        if (c->in[0]->numel == o->numel) {
            for (int64_t i = 0; i < o->numel; i++) y[i] = x[i] * x[i];
            return NULL;
        }
    }
    binary_apply(op, c->in[0], b, o);
    for (int k = 2; k < nin; k++) binary_apply(op, o, c->in[k], o);
    return NULL;
}

static smelt_err *k_add(gx_call *c) { return nary(c, B_ADD); }
static smelt_err *k_sub(gx_call *c) { return nary(c, B_SUB); }
static smelt_err *k_mul(gx_call *c) { return nary(c, B_MUL); }
static smelt_err *k_div(gx_call *c) { return nary(c, B_DIV); }
static smelt_err *k_pow(gx_call *c) { return nary(c, B_POW); }
static smelt_err *k_max(gx_call *c) { return nary(c, B_MAX); }
static smelt_err *k_min(gx_call *c) { return nary(c, B_MIN); }
static smelt_err *k_sum(gx_call *c) { return nary(c, B_ADD); }
static smelt_err *k_prelu(gx_call *c) { return nary(c, B_PRELU); }
static smelt_err *k_and(gx_call *c) { return nary(c, B_AND); }
static smelt_err *k_or(gx_call *c) { return nary(c, B_OR); }
static smelt_err *k_xor(gx_call *c) { return nary(c, B_XOR); }
static smelt_err *k_mod(gx_call *c) { return nary(c, gx_attr_i(c->node, "fmod", 0) ? B_FMOD : B_MOD); }

static smelt_err *k_bitshift(gx_call *c)
{
    const char *dir = gx_attr_s(c->node, "direction", "");
    if (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0) return gx_unsup(c, "attribute 'direction'='%s' not supported", dir);
    return nary(c, dir[0] == 'L' ? B_SHL : B_SHR);
}

static smelt_err *k_mean(gx_call *c)
{
    SMELT_TRY(nary(c, B_ADD));
    gx_tensor *o = c->out[0];
    double n = c->n_in;
    if (o->dtype == SMELT_DT_F32)
        for (int64_t i = 0; i < o->numel; i++) ((float *)o->data)[i] = (float)(((float *)o->data)[i] / n);
    else if (o->dtype == SMELT_DT_F64)
        for (int64_t i = 0; i < o->numel; i++) ((double *)o->data)[i] /= n;
    else
        return gx_dtype_unsup(c, o->dtype);
    return NULL;
}

/* ---- unary ---- */

enum {
    U_ABS, U_NEG, U_EXP, U_LOG, U_SQRT, U_RECIP, U_FLOOR, U_CEIL, U_ROUND, U_SIGN, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN,
    U_SINH, U_COSH, U_ASINH, U_ACOSH, U_ATANH, U_ERF, U_SIGMOID, U_TANH, U_RELU, U_LEAKY, U_ELU, U_SELU, U_CELU, U_HSIGMOID,
    U_HSWISH, U_SOFTPLUS, U_SOFTSIGN, U_TRELU, U_MISH, U_GELU, U_GELU_TANH, U_CLIP, U_SHRINK, U_NOT_BITS, U_IDENT
};

typedef struct {
    double alpha, beta, gamma, lo, hi;
} uparams;

#define UROW(EXPR)                                                 \
    for (int64_t i = 0; i < n; i++) {                              \
        elem_t x = a[i];                                           \
        o[i] = (elem_t)(EXPR);                                      \
    }

/* Float unary ops in type T with libm suffix functions chosen by the caller macro. */
#define FLOAT_UNARY(T, NAME, F)                                                                                    \
    static void NAME(int op, const uparams *p, const T *a, T *o, int64_t n)                                        \
    {                                                                                                              \
        typedef T elem_t;                                                                                          \
        const T al = (T)p->alpha, be = (T)p->beta, ga = (T)p->gamma, lo = (T)p->lo, hi = (T)p->hi;                 \
        switch (op) {                                                                                              \
        case U_ABS: UROW(F(fabs)(x)) break;                                                                        \
        case U_NEG: UROW(-x) break;                                                                                \
        case U_EXP: UROW(F(exp)(x)) break;                                                                         \
        case U_LOG: UROW(F(log)(x)) break;                                                                         \
        case U_SQRT: UROW(F(sqrt)(x)) break;                                                                       \
        case U_RECIP: UROW((T)1 / x) break;                                                                        \
        case U_FLOOR: UROW(F(floor)(x)) break;                                                                     \
        case U_CEIL: UROW(F(ceil)(x)) break;                                                                       \
        case U_ROUND: UROW(F(nearbyint)(x)) break;                                                                 \
        case U_SIGN: UROW(x > 0 ? (T)1 : x < 0 ? (T)-1 : x) break;                                                 \
        case U_SIN: UROW(F(sin)(x)) break;                                                                         \
        case U_COS: UROW(F(cos)(x)) break;                                                                         \
        case U_TAN: UROW(F(tan)(x)) break;                                                                         \
        case U_ASIN: UROW(F(asin)(x)) break;                                                                       \
        case U_ACOS: UROW(F(acos)(x)) break;                                                                       \
        case U_ATAN: UROW(F(atan)(x)) break;                                                                       \
        case U_SINH: UROW(F(sinh)(x)) break;                                                                       \
        case U_COSH: UROW(F(cosh)(x)) break;                                                                       \
        case U_ASINH: UROW(F(asinh)(x)) break;                                                                     \
        case U_ACOSH: UROW(F(acosh)(x)) break;                                                                     \
        case U_ATANH: UROW(F(atanh)(x)) break;                                                                     \
        case U_ERF: UROW(F(erf)(x)) break;                                                                         \
        case U_SIGMOID: UROW(x >= 0 ? (T)1 / ((T)1 + F(exp)(-x)) : F(exp)(x) / ((T)1 + F(exp)(x))) break;          \
        case U_TANH: UROW(F(tanh)(x)) break;                                                                       \
        case U_RELU: UROW(x > 0 ? x : (T)0) break;                                                                 \
        case U_LEAKY: UROW(x >= 0 ? x : al * x) break;                                                             \
        case U_ELU: UROW(x >= 0 ? x : al * (F(exp)(x) - (T)1)) break;                                              \
        case U_SELU: UROW(x > 0 ? ga * x : ga * (al * F(exp)(x) - al)) break;                                      \
        case U_CELU: UROW(x > 0 ? x : al * (F(exp)(x / al) - (T)1)) break;                                         \
        case U_HSIGMOID: UROW(F(fmax)((T)0, F(fmin)((T)1, al * x + be))) break;                                    \
        case U_HSWISH: UROW(x * F(fmax)((T)0, F(fmin)((T)1, x / (T)6 + (T)0.5))) break;                            \
        case U_SOFTPLUS: UROW(x > 20 ? x : F(log1p)(F(exp)(x))) break;                                             \
        case U_SOFTSIGN: UROW(x / ((T)1 + F(fabs)(x))) break;                                                      \
        case U_TRELU: UROW(x > al ? x : (T)0) break;                                                               \
        case U_MISH: UROW(x * F(tanh)(x > 20 ? x : F(log1p)(F(exp)(x)))) break;                                    \
        case U_GELU: UROW((T)0.5 * x * ((T)1 + F(erf)(x * (T)0.70710678118654752440))) break;                     \
        case U_GELU_TANH: UROW((T)0.5 * x * ((T)1 + F(tanh)((T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x)))) break; \
        case U_CLIP: UROW(isnan(x) ? x : x < lo ? lo : x > hi ? hi : x) break;                                     \
        case U_SHRINK: UROW(x < -al ? x + be : x > al ? x - be : (T)0) break;                                      \
        default: UROW(x) break;                                                                                    \
        }                                                                                                          \
    }

#define F32(fn) fn##f
#define F64(fn) fn
FLOAT_UNARY(float, unary_f32, F32)
FLOAT_UNARY(double, unary_f64, F64)

#define INT_UNARY(T, U, NAME)                                                       \
    static void NAME(int op, const uparams *p, const T *a, T *o, int64_t n)         \
    {                                                                               \
        typedef T elem_t;                                                           \
        T lo = (T)p->lo, hi = (T)p->hi;                                             \
        switch (op) {                                                               \
        case U_ABS: UROW(x < 0 ? (T)(0 - (U)x) : x) break;                          \
        case U_NEG: UROW((T)(0 - (U)x)) break;                                      \
        case U_SIGN: UROW(x > 0 ? 1 : x < 0 ? -1 : 0) break;                        \
        case U_RELU: UROW(x > 0 ? x : 0) break;                                     \
        case U_CLIP: UROW(x < lo ? lo : x > hi ? hi : x) break;                     \
        case U_NOT_BITS: UROW(~x) break;                                            \
        default: UROW(x) break;                                                     \
        }                                                                           \
    }

INT_UNARY(int64_t, uint64_t, unary_i64)
INT_UNARY(int32_t, uint32_t, unary_i32)
INT_UNARY(int16_t, uint16_t, unary_i16)
INT_UNARY(int8_t, uint8_t, unary_i8)
INT_UNARY(uint64_t, uint64_t, unary_u64)
INT_UNARY(uint32_t, uint32_t, unary_u32)
INT_UNARY(uint16_t, uint16_t, unary_u16)
INT_UNARY(uint8_t, uint8_t, unary_u8)

/* Exp, Sigmoid and Relu in f32 on the vectorized exp, without branches on the data. */
static void unary_fast_f32(int op, const float *a, float *o, int64_t n)
{
    if (op == U_RELU) {
        gx_bias_act_f32(o, a, n, 0.0f, true);
        return;
    }
    if (op == U_EXP) {
        gx_exp_f32(a, o, n);
        return;
    }
    gx_sigmoid_f32(a, o, n);
}

/* the fast f32 ops in chunks over the thread pool */
#define FAST_CHUNK 4096
typedef struct {
    int op;
    const float *a;
    float *o;
    int64_t n;
} fast_job;

static void fast_part(void *ctx, int64_t begin, int64_t end)
{
    const fast_job *j = ctx;
    int64_t b = begin * FAST_CHUNK, e = end * FAST_CHUNK < j->n ? end * FAST_CHUNK : j->n;
    unary_fast_f32(j->op, j->a + b, j->o + b, e - b);
}

static bool int_unary_ok(int op) { return op == U_ABS || op == U_NEG || op == U_SIGN || op == U_RELU || op == U_CLIP || op == U_NOT_BITS || op == U_IDENT; }

static smelt_err *unary(gx_call *c, int op, uparams p)
{
    const gx_tensor *a = c->in[0];
    if (!a) return gx_fail(c, "input 0 is missing");
    bool fl = a->dtype == SMELT_DT_F32 || a->dtype == SMELT_DT_F64;
    bool is_signed = a->dtype == SMELT_DT_I64 || a->dtype == SMELT_DT_I32 || a->dtype == SMELT_DT_I16 || a->dtype == SMELT_DT_I8;
    bool is_unsigned = a->dtype == SMELT_DT_U64 || a->dtype == SMELT_DT_U32 || a->dtype == SMELT_DT_U16 || a->dtype == SMELT_DT_U8;
    if (!fl && !((is_signed || is_unsigned) && int_unary_ok(op))) return gx_dtype_unsup(c, a->dtype);
    if (op == U_NOT_BITS && fl) return gx_dtype_unsup(c, a->dtype);
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, a->shape, &o));
    int64_t n = a->numel;
    if (a->dtype == SMELT_DT_F32 && (op == U_EXP || op == U_SIGMOID || op == U_RELU)) {
        fast_job j = {op, a->data, o, n};
        gx_parallel((n + FAST_CHUNK - 1) / FAST_CHUNK, op == U_RELU ? FAST_CHUNK : 8 * FAST_CHUNK, fast_part, &j);
        return NULL;
    }
    switch (a->dtype) {
    case SMELT_DT_F32: unary_f32(op, &p, a->data, o, n); break;
    case SMELT_DT_F64: unary_f64(op, &p, a->data, o, n); break;
    case SMELT_DT_I64: unary_i64(op, &p, a->data, o, n); break;
    case SMELT_DT_I32: unary_i32(op, &p, a->data, o, n); break;
    case SMELT_DT_I16: unary_i16(op, &p, a->data, o, n); break;
    case SMELT_DT_I8: unary_i8(op, &p, a->data, o, n); break;
    case SMELT_DT_U64: unary_u64(op, &p, a->data, o, n); break;
    case SMELT_DT_U32: unary_u32(op, &p, a->data, o, n); break;
    case SMELT_DT_U16: unary_u16(op, &p, a->data, o, n); break;
    default: unary_u8(op, &p, a->data, o, n); break;
    }
    return NULL;
}

static uparams attrs(const gx_call *c, double alpha, double beta, double gamma)
{
    return (uparams){gx_attr_f(c->node, "alpha", alpha), gx_attr_f(c->node, "beta", beta), gx_attr_f(c->node, "gamma", gamma), 0, 0};
}

#define UNARY_KERNEL(NAME, OP, A, B, G) \
    static smelt_err *NAME(gx_call *c) { return unary(c, OP, attrs(c, A, B, G)); }

UNARY_KERNEL(k_abs, U_ABS, 0, 0, 0)
UNARY_KERNEL(k_neg, U_NEG, 0, 0, 0)
UNARY_KERNEL(k_exp, U_EXP, 0, 0, 0)
UNARY_KERNEL(k_log, U_LOG, 0, 0, 0)
UNARY_KERNEL(k_sqrt, U_SQRT, 0, 0, 0)
UNARY_KERNEL(k_recip, U_RECIP, 0, 0, 0)
UNARY_KERNEL(k_floor, U_FLOOR, 0, 0, 0)
UNARY_KERNEL(k_ceil, U_CEIL, 0, 0, 0)
UNARY_KERNEL(k_round, U_ROUND, 0, 0, 0)
UNARY_KERNEL(k_sign, U_SIGN, 0, 0, 0)
UNARY_KERNEL(k_sin, U_SIN, 0, 0, 0)
UNARY_KERNEL(k_cos, U_COS, 0, 0, 0)
UNARY_KERNEL(k_tan, U_TAN, 0, 0, 0)
UNARY_KERNEL(k_asin, U_ASIN, 0, 0, 0)
UNARY_KERNEL(k_acos, U_ACOS, 0, 0, 0)
UNARY_KERNEL(k_atan, U_ATAN, 0, 0, 0)
UNARY_KERNEL(k_sinh, U_SINH, 0, 0, 0)
UNARY_KERNEL(k_cosh, U_COSH, 0, 0, 0)
UNARY_KERNEL(k_asinh, U_ASINH, 0, 0, 0)
UNARY_KERNEL(k_acosh, U_ACOSH, 0, 0, 0)
UNARY_KERNEL(k_atanh, U_ATANH, 0, 0, 0)
UNARY_KERNEL(k_erf, U_ERF, 0, 0, 0)
UNARY_KERNEL(k_sigmoid, U_SIGMOID, 0, 0, 0)
UNARY_KERNEL(k_tanh, U_TANH, 0, 0, 0)
UNARY_KERNEL(k_relu, U_RELU, 0, 0, 0)
UNARY_KERNEL(k_leaky, U_LEAKY, 0.01, 0, 0)
UNARY_KERNEL(k_elu, U_ELU, 1.0, 0, 0)
UNARY_KERNEL(k_selu, U_SELU, 1.67326319217681884765625, 0, 1.05070102214813232421875)
UNARY_KERNEL(k_celu, U_CELU, 1.0, 0, 0)
UNARY_KERNEL(k_hsigmoid, U_HSIGMOID, 0.2, 0.5, 0)
UNARY_KERNEL(k_hswish, U_HSWISH, 0, 0, 0)
UNARY_KERNEL(k_softplus, U_SOFTPLUS, 0, 0, 0)
UNARY_KERNEL(k_softsign, U_SOFTSIGN, 0, 0, 0)
UNARY_KERNEL(k_trelu, U_TRELU, 1.0, 0, 0)
UNARY_KERNEL(k_mish, U_MISH, 0, 0, 0)
UNARY_KERNEL(k_bitnot, U_NOT_BITS, 0, 0, 0)

static smelt_err *k_shrink(gx_call *c)
{
    uparams p = {gx_attr_f(c->node, "lambd", 0.5), gx_attr_f(c->node, "bias", 0.0), 0, 0, 0};
    return unary(c, U_SHRINK, p);
}

static smelt_err *k_gelu(gx_call *c)
{
    const char *ap = gx_attr_s(c->node, "approximate", "none");
    return unary(c, strcmp(ap, "tanh") == 0 ? U_GELU_TANH : U_GELU, (uparams){0});
}

static smelt_err *check_gelu(const smelt_node *n, int opset)
{
    const char *ap = gx_attr_s(n, "approximate", "none");
    if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0) return gx_node_unsup(n, "attribute 'approximate'='%s' not supported", ap);
    return NULL;
}

/* Clip: bounds from attributes (opset < 11) or optional scalar inputs 1 and 2. */
static smelt_err *k_clip(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    uparams p = {0};
    bool fl = a->dtype == SMELT_DT_F32 || a->dtype == SMELT_DT_F64;
    p.lo = fl ? -INFINITY : -9.2e18;
    p.hi = fl ? INFINITY : 9.2e18;
    if (a->dtype == SMELT_DT_U8 || a->dtype == SMELT_DT_U16 || a->dtype == SMELT_DT_U32 || a->dtype == SMELT_DT_U64) p.lo = 0;
    if (a->dtype == SMELT_DT_I8) p.lo = -128, p.hi = 127;
    if (a->dtype == SMELT_DT_U8) p.hi = 255;
    if (a->dtype == SMELT_DT_I16) p.lo = -32768, p.hi = 32767;
    if (a->dtype == SMELT_DT_U16) p.hi = 65535;
    if (a->dtype == SMELT_DT_I32) p.lo = -2147483648.0, p.hi = 2147483647.0;
    if (a->dtype == SMELT_DT_U32) p.hi = 4294967295.0;
    if (c->opset < 11) {
        p.lo = gx_attr_f(c->node, "min", -FLT_MAX);
        p.hi = gx_attr_f(c->node, "max", FLT_MAX);
    }
    if (c->n_in > 1 && c->in[1]) {
        if (c->in[1]->numel != 1 || c->in[1]->dtype != a->dtype) return gx_fail(c, "'min' must be a scalar of the input's type");
        p.lo = gx_get_f(c->in[1], 0);
    }
    if (c->n_in > 2 && c->in[2]) {
        if (c->in[2]->numel != 1 || c->in[2]->dtype != a->dtype) return gx_fail(c, "'max' must be a scalar of the input's type");
        p.hi = gx_get_f(c->in[2], 0);
    }
    return unary(c, U_CLIP, p);
}

const gx_op gx_ops_elementwise[] = {
    {"Add", k_add, NULL},           {"Sub", k_sub, NULL},
    {"Mul", k_mul, NULL},           {"Div", k_div, NULL},
    {"Pow", k_pow, NULL},           {"Max", k_max, NULL},
    {"Min", k_min, NULL},           {"Sum", k_sum, NULL},
    {"Mean", k_mean, NULL},         {"Mod", k_mod, NULL},
    {"PRelu", k_prelu, NULL},       {"BitShift", k_bitshift, NULL},
    {"BitwiseAnd", k_and, NULL},    {"BitwiseOr", k_or, NULL},
    {"BitwiseXor", k_xor, NULL},    {"BitwiseNot", k_bitnot, NULL},
    {"Abs", k_abs, NULL},           {"Neg", k_neg, NULL},
    {"Exp", k_exp, NULL},           {"Log", k_log, NULL},
    {"Sqrt", k_sqrt, NULL},         {"Reciprocal", k_recip, NULL},
    {"Floor", k_floor, NULL},       {"Ceil", k_ceil, NULL},
    {"Round", k_round, NULL},       {"Sign", k_sign, NULL},
    {"Sin", k_sin, NULL},           {"Cos", k_cos, NULL},
    {"Tan", k_tan, NULL},           {"Asin", k_asin, NULL},
    {"Acos", k_acos, NULL},         {"Atan", k_atan, NULL},
    {"Sinh", k_sinh, NULL},         {"Cosh", k_cosh, NULL},
    {"Asinh", k_asinh, NULL},       {"Acosh", k_acosh, NULL},
    {"Atanh", k_atanh, NULL},       {"Erf", k_erf, NULL},
    {"Sigmoid", k_sigmoid, NULL},   {"Tanh", k_tanh, NULL},
    {"Relu", k_relu, NULL},         {"LeakyRelu", k_leaky, NULL},
    {"Elu", k_elu, NULL},           {"Selu", k_selu, NULL},
    {"Celu", k_celu, NULL},         {"HardSigmoid", k_hsigmoid, NULL},
    {"HardSwish", k_hswish, NULL},  {"Softplus", k_softplus, NULL},
    {"Softsign", k_softsign, NULL}, {"ThresholdedRelu", k_trelu, NULL},
    {"Mish", k_mish, NULL},         {"Gelu", k_gelu, check_gelu},
    {"Clip", k_clip, NULL},         {"Shrink", k_shrink, NULL},
    {NULL, NULL, NULL},
};
