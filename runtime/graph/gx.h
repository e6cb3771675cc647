/* Internals of the graph executor shared by the planner (graph_exec.c) and the op families
 * (op_*.c): the run-time tensor, the call a kernel receives, the op table entry, and helpers for
 * attributes, broadcasting, integer inputs and errors.
 *
 * A kernel reads c->in[i] (NULL for an omitted optional input), computes its output shapes, asks
 * for each output buffer with gx_out (or makes an output a view of an input with gx_alias), and
 * fills it. Kernels never write their inputs. Errors name the node via gx_fail / gx_unsup.
 */
#ifndef SMELT_GX_H
#define SMELT_GX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ir.h"

#define GX_MAXD SMELT_MAX_DIMS

/* The kernels are plain loops over rows of unknown length: at -O2 GCC only vectorizes loops whose
 * trip count needs no remainder ("very cheap" cost model), which leaves every elementwise, copy
 * and reduction loop scalar. The dynamic cost model vectorizes them with a scalar tail; IEEE
 * semantics are unchanged (no reassociation), so results are bit for bit the same. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

/* A constant weight stored as int8, symmetric, one f32 scale per channel along `axis` (the IR's
 * quant fields): w[i] = scale[c(i)] * q[i]. Prepared at load from the model's tensor; only MatMul,
 * Gemm and Conv read it in this form (as their weight input), every other reader gets it
 * dequantized to f32 at load. */
typedef struct {
    int axis;
    int64_t channels, inner; /* shape[axis]; elements after axis (a channel's run in memory) */
    const int8_t *q;         /* in the tensor's own layout */
    const float *scale;      /* [channels] */
    int8_t *qt;              /* a [K, N] weight quantized along axis 1 transposed to [N][K] (owned by
                                the graph, made at load) so qmatmul's row kernels can stream it */
} gx_qweight;

typedef struct {
    smelt_dtype dtype;
    int ndim;
    int64_t shape[GX_MAXD];
    int64_t numel;
    void *data;
    int buf; /* pool buffer index holding data, -1 for constants and caller inputs */
    const gx_qweight *qw; /* non-NULL for an int8 per-channel weight (dtype i8): see gx_qweight */
    const float *pk;      /* a constant f32 matrix product weight also packed for gx_gemm_packed
                             (gemm_packed.h; owned by the graph, made at load), else NULL */
} gx_tensor;

typedef struct gx_exec gx_exec;

/* An activation fused into a step by the planner (the kernel applies it to its output).
 * GX_FUSE_RELU_POOL2: a Relu then a 2x2 stride-2 MaxPool (no pads, floor) on a Conv's output; the
 * Conv's output is the pooled tensor [N, M, OH/2, OW/2]. */
enum { GX_FUSE_NONE, GX_FUSE_RELU, GX_FUSE_RELU_POOL2 };

typedef struct {
    const smelt_node *node;
    int opset;        /* the model's default-domain opset */
    int n_in, n_out;  /* as in the node */
    const gx_tensor **in;
    gx_tensor **out;  /* NULL where the node leaves an output unnamed */
    gx_exec *x;
    int fuse;         /* GX_FUSE_*: only set on ops that implement it (Conv) */
} gx_call;

typedef smelt_err *(*gx_kernel_fn)(gx_call *c);
/* Load-time check of attributes (dtypes are checked by the kernel at run time); NULL = none. */
typedef smelt_err *(*gx_check_fn)(const smelt_node *n, int opset);

typedef struct {
    const char *op;
    gx_kernel_fn run;
    gx_check_fn check;
} gx_op;

/* Each op family exports its table, terminated by an entry with op == NULL. */
extern const gx_op gx_ops_elementwise[], gx_ops_logic[], gx_ops_reduce[], gx_ops_shape[], gx_ops_matmul[], gx_ops_conv[],
    gx_ops_norm[], gx_ops_gather[], gx_ops_misc[];

const gx_op *gx_find_op(const char *op);

/* ---- outputs ---- */
/* Allocates output i with the given dtype and shape (from the graph's pool); *data may be NULL. */
smelt_err *gx_out(gx_call *c, int i, smelt_dtype dt, int ndim, const int64_t *shape, void **data);
/* Makes output i a view of input j's data with a new shape (same element count). */
smelt_err *gx_alias(gx_call *c, int i, int j, int ndim, const int64_t *shape);

/* Scratch memory from the pool for the running kernel (64-byte aligned), returned to the pool when
 * the kernel returns; NULL when out of memory (at most 8 per kernel call). */
void *gx_scratch(gx_call *c, size_t bytes);

/* ---- parallel helpers ---- */
/* C = alpha op(A) op(B) + beta C (f32, row-major), split over smelt's thread pool by rows of C,
 * or by columns when C has more columns than rows; small products run on the calling thread. */
void gx_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc);
/* fn over [0, n) on the thread pool when n * cost_per_item is large enough to pay for the wake-up. */
void gx_parallel(int64_t n, int64_t cost_per_item, void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx);
/* y[i] = exp(x[i]) in f32 (vectorized; within a few ulp of expf). x and y may be the same. */
void gx_exp_f32(const float *x, float *y, int64_t n);

/* Softmax of one row of n values (max subtracted, f32 sums); x and y may be the same. */
void gx_softmax_row_f32(const float *x, float *y, int64_t n);
/* y[i] = 1 / (1 + exp(-x[i])) (from exp(-|x|), never overflowing); x and y may be the same. */
void gx_sigmoid_f32(const float *x, float *y, int64_t n);

/* y[i] = x[i] + bias, then max(., 0) when relu (NaN gives 0, as Relu); vectorized. */
void gx_bias_act_f32(float *y, const float *x, int64_t n, float bias, bool relu);

/* ---- int8 weights (gx_quant.c) ---- */
/* out[i] = scale[c(i)] * q[i] for the whole tensor, in its own layout (numel elements). */
void gx_dequant(const gx_qweight *w, int64_t numel, float *out);
/* Rows of x [T, K] that go through qmatmul's streaming kernels rather than dequantize + sgemm. */
#define GX_QMAT_MAX_ROWS 8
/* y[T, N] = x[T, K] · W^T with W as qmatmul rows [N][K] (rows: q or qt), threaded. False on OOM. */
bool gx_qmat_rows(const gx_qweight *w, const int8_t *rows, int64_t N, int64_t K, const float *x, int64_t T, float *y);

/* ---- errors ---- */
/* "node 'name' (Op): <message>", kind SMELT_E_INVALID / SMELT_E_UNSUPPORTED. */
smelt_err *gx_fail(const gx_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
smelt_err *gx_unsup(const gx_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
smelt_err *gx_node_unsup(const smelt_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
smelt_err *gx_dtype_unsup(const gx_call *c, smelt_dtype dt);
const char *gx_node_name(const smelt_node *n);

/* ---- attributes ---- */
int64_t gx_attr_i(const smelt_node *n, const char *name, int64_t dflt);
double gx_attr_f(const smelt_node *n, const char *name, double dflt);
const char *gx_attr_s(const smelt_node *n, const char *name, const char *dflt);
/* INTS attribute: returns its count (or -1 when absent) and points *v at the values. */
int gx_attr_ints(const smelt_node *n, const char *name, const int64_t **v);

/* ---- shapes and values ---- */
int gx_esize(smelt_dtype dt);
const char *gx_shape_str(const gx_tensor *t, char *buf, size_t cap);
/* Normalizes axis (may be negative) into [0, rank); false when out of range. */
bool gx_axis(int64_t axis, int rank, int *out);
/* Reads an integer tensor (i64 or i32) into v (at most cap values); returns the count or -1. */
int64_t gx_read_ints(const gx_tensor *t, int64_t *v, int64_t cap);
/* Reads element k of a numeric tensor as double / int64. */
double gx_get_f(const gx_tensor *t, int64_t k);
int64_t gx_get_i(const gx_tensor *t, int64_t k);
/* Contiguous strides (in elements) of a shape. */
void gx_strides(int ndim, const int64_t *shape, int64_t *strides);

/* numpy broadcasting of up to 3 inputs: the output shape, then dims coalesced and per-input element
 * strides (0 along broadcast dims), walked one innermost row at a time. */
typedef struct {
    int nin, ndim;
    int64_t shape[GX_MAXD];
    int64_t strides[3][GX_MAXD];
    int64_t idx[GX_MAXD];
    int64_t off[3];
    int64_t rows, inner;
} gx_bcast;

smelt_err *gx_bcast_shape(gx_call *c, int nin, const gx_tensor *const *ins, int *ndim, int64_t *shape);
/* Sets up iteration over out shape (ndim, shape) for inputs ins. */
void gx_bcast_init(gx_bcast *b, int nin, const gx_tensor *const *ins, int ndim, const int64_t *shape);
/* Advances to the next row (after the caller processed the row at b->off[]). */
void gx_bcast_next(gx_bcast *b);
/* Moves to row `row` (0 <= row < rows), e.g. where a thread's share starts. */
void gx_bcast_seek(gx_bcast *b, int64_t row);

#endif
