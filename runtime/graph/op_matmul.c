/* MatMul (numpy semantics: 1-D promotion, broadcast batch dims) and Gemm, on OpenBLAS sgemm
 * (dgemm for f64; plain loops for integer types). A MatMul whose right operand is a plain matrix
 * folds the left operand's batch dims into M, so [B,T,C] x [C,N] is one sgemm. */
#include <cblas.h>
#include <string.h>

#include "runtime/graph/gemm_packed.h"
#include "runtime/graph/gx.h"

/* C[M,N] = A[M,K] B[K,N] for integer types (row-major, contiguous). */
#define IMM(T)                                                                           \
    static void imm_##T(const T *A, const T *B, T *C, int64_t M, int64_t N, int64_t K)  \
    {                                                                                    \
        for (int64_t i = 0; i < M; i++) {                                                \
            T *c = C + i * N;                                                            \
            for (int64_t j = 0; j < N; j++) c[j] = 0;                                    \
            for (int64_t k = 0; k < K; k++) {                                            \
                T a = A[i * K + k];                                                      \
                const T *b = B + k * N;                                                  \
                for (int64_t j = 0; j < N; j++) c[j] = (T)(c[j] + a * b[j]);             \
            }                                                                            \
        }                                                                                \
    }
IMM(int32_t)
IMM(int64_t)

static smelt_err *mm(gx_call *c, smelt_dtype dt, const void *A, const void *B, void *C, int64_t M, int64_t N, int64_t K)
{
    if (M == 0 || N == 0) return NULL;
    if (K == 0) {
        memset(C, 0, (size_t)(M * N * gx_esize(dt)));
        return NULL;
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return gx_unsup(c, "matrix dims beyond 2^31");
    switch (dt) {
    case SMELT_DT_F32: gx_sgemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N); break;
    case SMELT_DT_F64: cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, A, (int)K, B, (int)N, 0.0, C, (int)N); break;
    case SMELT_DT_I32: imm_int32_t(A, B, C, M, N, K); break;
    case SMELT_DT_I64: imm_int64_t(A, B, C, M, N, K); break;
    default: return gx_dtype_unsup(c, dt);
    }
    return NULL;
}

typedef struct {
    const float *a, *b;
    float *o;
    const int64_t *offs; /* per batch: A's and B's matrix index */
    int64_t M, N, K;
} batched_job;

static void batched_part(void *ctx, int64_t begin, int64_t end)
{
    const batched_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        float *o = j->o + i * j->M * j->N;
        if (j->K == 0) {
            memset(o, 0, (size_t)(j->M * j->N) * sizeof *o);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->M, (int)j->N, (int)j->K, 1.0f, j->a + j->offs[2 * i] * j->M * j->K, (int)j->K,
                    j->b + j->offs[2 * i + 1] * j->K * j->N, (int)j->N, 0.0f, o, (int)j->N);
    }
}

/* MatMul by an int8 weight B [K, N] (per channel N): a few rows of A stream the int8 weight
 * through qmatmul's kernels; more rows dequantize it once into scratch for one sgemm (f32
 * accumulation), which the dequantization costs little next to. */
static smelt_err *matmul_q8(gx_call *c, const gx_tensor *a, const gx_tensor *b)
{
    if (a->dtype != SMELT_DT_F32) return gx_fail(c, "input A is %s; an int8 weight needs f32 activations", smelt_dtype_name(a->dtype));
    if (a->ndim == 0) return gx_fail(c, "inputs must have at least 1 dim");
    int64_t K = b->shape[0], N = b->shape[1];
    if (a->shape[a->ndim - 1] != K) {
        char s1[160], s2[160];
        return gx_fail(c, "shapes %s and %s: inner dims %lld and %lld differ", gx_shape_str(a, s1, sizeof s1), gx_shape_str(b, s2, sizeof s2),
                       (long long)a->shape[a->ndim - 1], (long long)K);
    }
    if (K > INT32_MAX || N > INT32_MAX) return gx_unsup(c, "matrix dims beyond 2^31");
    int64_t oshape[GX_MAXD];
    for (int d = 0; d < a->ndim - 1; d++) oshape[d] = a->shape[d];
    oshape[a->ndim - 1] = N;
    float *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, a->ndim, oshape, (void **)&o));
    int64_t rows = K ? a->numel / K : smelt_shape_numel(a->ndim - 1, a->shape);
    if (rows == 0 || N == 0) return NULL;
    if (K == 0) {
        memset(o, 0, (size_t)(rows * N) * sizeof *o);
        return NULL;
    }
    if (rows <= GX_QMAT_MAX_ROWS && b->qw->qt) {
        if (!gx_qmat_rows(b->qw, b->qw->qt, N, K, a->data, rows, o)) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (MatMul): out of memory", gx_node_name(c->node));
        return NULL;
    }
    float *w = gx_scratch(c, (size_t)(K * N) * sizeof *w);
    if (!w) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (MatMul): out of memory", gx_node_name(c->node));
    gx_dequant(b->qw, K * N, w);
    gx_sgemm(false, false, rows, N, K, 1.0f, a->data, K, w, N, 0.0f, o, N);
    return NULL;
}

static smelt_err *k_matmul(gx_call *c)
{
    const gx_tensor *a = c->in[0], *b = c->in[1];
    if (!a || !b) return gx_fail(c, "expected 2 inputs");
    if (b->qw) return matmul_q8(c, a, b);
    if (a->dtype != b->dtype) return gx_fail(c, "inputs are %s and %s", smelt_dtype_name(a->dtype), smelt_dtype_name(b->dtype));
    smelt_dtype dt = a->dtype;
    if (dt != SMELT_DT_F32 && dt != SMELT_DT_F64 && dt != SMELT_DT_I32 && dt != SMELT_DT_I64) return gx_dtype_unsup(c, dt);
    if (a->ndim == 0 || b->ndim == 0) return gx_fail(c, "inputs must have at least 1 dim");
    /* Promote 1-D operands to matrices. */
    gx_tensor A = *a, Bm = *b;
    if (a->ndim == 1) A.ndim = 2, A.shape[0] = 1, A.shape[1] = a->shape[0];
    if (b->ndim == 1) Bm.ndim = 2, Bm.shape[0] = b->shape[0], Bm.shape[1] = 1;
    int64_t M = A.shape[A.ndim - 2], K = A.shape[A.ndim - 1], N = Bm.shape[Bm.ndim - 1];
    if (Bm.shape[Bm.ndim - 2] != K) {
        char s1[160], s2[160];
        return gx_fail(c, "shapes %s and %s: inner dims %lld and %lld differ", gx_shape_str(a, s1, sizeof s1), gx_shape_str(b, s2, sizeof s2),
                       (long long)K, (long long)Bm.shape[Bm.ndim - 2]);
    }
    /* Batch dims broadcast. */
    gx_tensor ab = {.ndim = A.ndim - 2}, bb = {.ndim = Bm.ndim - 2};
    memcpy(ab.shape, A.shape, sizeof ab.shape);
    memcpy(bb.shape, Bm.shape, sizeof bb.shape);
    const gx_tensor *bat[2] = {&ab, &bb};
    int nb;
    int64_t bshape[GX_MAXD], oshape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, 2, bat, &nb, bshape));
    int on = 0;
    for (int d = 0; d < nb; d++) oshape[on++] = bshape[d];
    if (a->ndim > 1) oshape[on++] = M;
    if (b->ndim > 1) oshape[on++] = N;
    char *o;
    SMELT_TRY(gx_out(c, 0, dt, on, oshape, (void **)&o));
    int es = gx_esize(dt);
    if (Bm.ndim == 2) { /* fold A's batch into M */
        int64_t rows = smelt_shape_numel(ab.ndim, ab.shape) * M;
        if (b->pk && b->ndim == 2 && dt == SMELT_DT_F32 && rows >= GX_PK_MIN_ROWS) return gx_gemm_packed(c, a->data, K, rows, K, N, b->pk, 1.0f, false, 0.0f, (float *)o, N);
        return mm(c, dt, a->data, b->data, o, rows, N, K);
    }
    int64_t nbatch = smelt_shape_numel(nb, bshape);
    int64_t *offs = gx_scratch(c, (size_t)(2 * nbatch + 1) * sizeof *offs);
    if (!offs) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (MatMul): out of memory", gx_node_name(c->node));
    gx_bcast it;
    gx_bcast_init(&it, 2, bat, nb, bshape);
    int64_t batch = 0;
    for (int64_t r = 0; r < it.rows; r++, gx_bcast_next(&it))
        for (int64_t i = 0; i < it.inner; i++, batch++) {
            offs[2 * batch] = it.off[0] + i * it.strides[0][it.ndim - 1];
            offs[2 * batch + 1] = it.off[1] + i * it.strides[1][it.ndim - 1];
        }
    if (dt == SMELT_DT_F32 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && M * N > 0) {
        /* f32 batches (attention heads) spread over the pool, one single-threaded sgemm each */
        batched_job j = {a->data, b->data, (float *)o, offs, M, N, K};
        gx_parallel(nbatch, 2 * M * N * K + 1, batched_part, &j);
        return NULL;
    }
    for (batch = 0; batch < nbatch; batch++)
        SMELT_TRY(mm(c, dt, (const char *)a->data + offs[2 * batch] * M * K * es, (const char *)b->data + offs[2 * batch + 1] * K * N * es,
                     o + batch * M * N * es, M, N, K));
    return NULL;
}

/* Gemm: Y = alpha * op(A) op(B) + beta * C, C broadcast to [M, N]. */
static smelt_err *k_gemm(gx_call *c)
{
    const gx_tensor *a = c->in[0], *b = c->in[1], *cc = c->n_in > 2 ? c->in[2] : NULL;
    if (!a || !b) return gx_fail(c, "expected at least 2 inputs");
    if (a->ndim != 2 || b->ndim != 2) return gx_fail(c, "A and B must be 2-D");
    smelt_dtype dt = a->dtype;
    const gx_qweight *qw = b->qw; /* int8 B: the same product on its dequantized or streamed values */
    if ((qw ? SMELT_DT_F32 : b->dtype) != dt || (cc && cc->dtype != dt)) return gx_fail(c, "inputs differ in dtype");
    if (dt != SMELT_DT_F32 && dt != SMELT_DT_F64) return gx_dtype_unsup(c, dt);
    bool ta = gx_attr_i(c->node, "transA", 0), tb = gx_attr_i(c->node, "transB", 0);
    double alpha = gx_attr_f(c->node, "alpha", 1.0), beta = gx_attr_f(c->node, "beta", 1.0);
    int64_t M = ta ? a->shape[1] : a->shape[0], K = ta ? a->shape[0] : a->shape[1];
    int64_t Kb = tb ? b->shape[1] : b->shape[0], N = tb ? b->shape[0] : b->shape[1];
    if (K != Kb) {
        char s1[160], s2[160];
        return gx_fail(c, "shapes %s and %s (transA=%d, transB=%d): inner dims %lld and %lld differ", gx_shape_str(a, s1, sizeof s1),
                       gx_shape_str(b, s2, sizeof s2), ta, tb, (long long)K, (long long)Kb);
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return gx_unsup(c, "matrix dims beyond 2^31");
    int64_t oshape[2] = {M, N};
    void *o;
    SMELT_TRY(gx_out(c, 0, dt, 2, oshape, &o));
    if (cc && beta != 0) {
        gx_tensor ot = {.dtype = dt, .ndim = 2, .shape = {M, N}};
        const gx_tensor *ins[2] = {&ot, cc};
        int nd;
        int64_t sh[GX_MAXD];
        SMELT_TRY(gx_bcast_shape(c, 2, ins, &nd, sh));
        if (nd != 2 || sh[0] != M || sh[1] != N) return gx_fail(c, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
        const gx_tensor *one[1] = {cc};
        gx_bcast it;
        gx_bcast_init(&it, 1, one, 2, oshape);
        int64_t s = it.strides[0][it.ndim - 1];
        for (int64_t r = 0; r < it.rows; r++, gx_bcast_next(&it))
            for (int64_t i = 0; i < it.inner; i++) {
                if (dt == SMELT_DT_F32) ((float *)o)[r * it.inner + i] = ((const float *)cc->data)[it.off[0] + i * s];
                else ((double *)o)[r * it.inner + i] = ((const double *)cc->data)[it.off[0] + i * s];
            }
    } else {
        beta = 0;
        if (M > 0 && N > 0) memset(o, 0, (size_t)(M * N * gx_esize(dt)));
    }
    if (M == 0 || N == 0) return NULL;
    if (K == 0) {
        if (beta != 1)
            for (int64_t i = 0; i < M * N; i++) {
                if (dt == SMELT_DT_F32) ((float *)o)[i] = (float)(((float *)o)[i] * beta);
                else ((double *)o)[i] *= beta;
            }
        return NULL;
    }
    const float *bf = b->data;
    if (qw && !ta && M <= GX_QMAT_MAX_ROWS && (tb || qw->qt)) {
        /* a few rows: qmatmul streams the int8 rows ([N][K]: B itself with transB, else its
         * transposed copy) into scratch, then o = alpha y + beta o */
        float *y = gx_scratch(c, (size_t)(M * N) * sizeof *y);
        if (!y || !gx_qmat_rows(qw, tb ? qw->q : qw->qt, N, K, a->data, M, y))
            return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Gemm): out of memory", gx_node_name(c->node));
        float *of = o;
        for (int64_t i = 0; i < M * N; i++) of[i] = (float)alpha * y[i] + (beta != 0 ? (float)beta * of[i] : 0.0f);
        return NULL;
    }
    if (qw) {
        float *w = gx_scratch(c, (size_t)b->numel * sizeof *w);
        if (!w) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Gemm): out of memory", gx_node_name(c->node));
        gx_dequant(qw, b->numel, w);
        bf = w;
    }
    if (dt == SMELT_DT_F32 && b->pk && !ta && M >= GX_PK_MIN_ROWS)
        return gx_gemm_packed(c, a->data, a->shape[1], M, K, N, b->pk, (float)alpha, beta != 0, (float)beta, o, N);
    if (dt == SMELT_DT_F32)
        gx_sgemm(ta, tb, M, N, K, (float)alpha, a->data, a->shape[1], bf, b->shape[1], (float)beta, o, N);
    else
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, a->data,
                    (int)a->shape[1], b->data, (int)b->shape[1], beta, o, (int)N);
    return NULL;
}

const gx_op gx_ops_matmul[] = {
    {"MatMul", k_matmul, NULL},
    {"Gemm", k_gemm, NULL},
    {NULL, NULL, NULL},
};
