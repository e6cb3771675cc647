/* Products with int8 activations (runtime/cpu/qmatmul_x8.h).
 *   - the activation quantizer: hand-computed bytes (round half to even, all-zero block, padding)
 *     and every SIMD quantizer byte for byte and scale for scale equal to the scalar one;
 *   - every SIMD kernel this CPU runs against the scalar reference on odd shapes (rows not a
 *     multiple of the thread grain, int8 columns not a multiple of the vector width, 4-bit groups
 *     of 32, 64, 128 and 256, sym and asym, chunks of 128 columns cut short, 1 to 8 rows of x):
 *     within f32 rounding (the integer dots are the same, only the float sums' order differs),
 *     and exactly equal where every float step is exact (power-of-two scales, activations on
 *     the int8 grid);
 *   - the reference against dequantize-then-multiply in double within the bound of the
 *     activation rounding: |y - y_exact| <= sum_c |w_c| * s_b(c) / 2 (+ f32 rounding);
 *   - what falls back to the float kernels (more than QMAT_MAX_T rows, other 4-bit groups);
 *   - the decode layout (interleaved rows): the same floats bit for bit as row after row. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "quant/rtn.h"
#include "runtime/cpu/qmatmul_x8.h"

static uint64_t rng = 7;
static uint32_t urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33);
}
static float frand(void) { return (float)(urand() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }

/* the kernels this CPU runs, the reference first */
static int kernel_sets(const qx_kernels *ks[3])
{
    int n = 0;
    ks[n++] = qx_kernels_ref();
    if (qx_kernels_avx2()) ks[n++] = qx_kernels_avx2();
    if (qx_kernels_vnni()) ks[n++] = qx_kernels_vnni();
    return n;
}

typedef struct {
    qmat w;
    void *q;
    float *scale, *wf;
    uint8_t *zero;
} test_mat;

static test_mat make(int bits, int rows, int cols, int group, bool asym)
{
    test_mat m = {{bits, rows, cols, bits == 8 ? cols : group, NULL, NULL, NULL, false}, NULL, NULL, NULL, NULL};
    int ng = cols / m.w.group;
    m.wf = malloc((size_t)rows * cols * sizeof(float));
    for (size_t i = 0; i < (size_t)rows * cols; i++) m.wf[i] = frand() * (1 + (float)(i % 7));
    m.q = calloc((size_t)rows * cols, 1);
    m.scale = malloc((size_t)rows * ng * sizeof(float));
    m.zero = asym ? malloc((size_t)rows * ng) : NULL;
    quant_scheme s = {bits, group, asym};
    rtn_quantize(m.wf, rows, cols, &s, m.q, m.scale, m.zero);
    m.w.q = m.q;
    m.w.scale = m.scale;
    m.w.zero = m.zero;
    return m;
}

static void drop(test_mat *m) { free(m->q), free(m->scale), free(m->zero), free(m->wf); }

static void quantizer(void **state)
{
    (void)state;
    /* block 0: max 127 -> scale 1, 2.5 -> 2 and -3.5 -> -4 (half to even); block 1: all zero;
     * block 2: max 0.5 -> q = x * 254; columns 70.. pad to 128 with q = 0 */
    float x[70] = {127, 2.5f, -3.5f, 0.5f, 1.5f, -127, 126.6f};
    x[64] = 0.5f, x[65] = -0.25f, x[66] = 0.125f;
    qxvec v;
    assert_true(qxvec_make(&v, qx_kernels_ref(), x, 1, 70, 8));
    assert_int_equal(v.cols_p, 128);
    int want[7] = {127, 2, -4, 0, 2, -127, 127};
    for (int i = 0; i < 7; i++) assert_int_equal(v.q[i], want[i]);
    assert_true(v.s[0] == 1.0f && v.s[1] == 0.0f && v.s[2] == 0.5f / 127.0f && v.s[3] == 0.0f);
    assert_int_equal(v.q[64], 127);
    assert_int_equal(v.q[65], -64); /* -63.5 -> -64 */
    assert_int_equal(v.q[66], 32);  /* 31.75 */
    for (int c = 67; c < 128; c++) assert_int_equal(v.q[c], 0);
    assert_true(v.lane[0] == 1.0f && v.lane[7] == 1.0f && v.lane[8] == 0.0f && v.lane[16] == v.s[2]);
    qxvec_free(&v);
    /* the 4-bit layout: column c at qx4_pos(c), lane sums over 8 columns */
    assert_true(qxvec_make(&v, qx_kernels_ref(), x, 1, 70, 4));
    assert_int_equal(v.q[0], 127);
    assert_int_equal(v.q[64], 2);  /* column 1 */
    assert_int_equal(v.q[1], -4);  /* column 2 */
    assert_int_equal(v.q[65], 0);  /* column 3 */
    assert_int_equal(v.nsum[0], -(127 + 2 - 4 + 0 + 2 - 127 + 127));
    assert_int_equal(v.nsum[8], -(127 - 64 + 32));
    qxvec_free(&v);

    /* every SIMD quantizer gives the reference's bytes, scales and lane sums */
    const qx_kernels *ks[3];
    int nk = kernel_sets(ks);
    static const int widths[] = {7, 32, 100, 256, 4133};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (int bits = 4; bits <= 8; bits += 4) {
            int cols = widths[wi], T = 2;
            float *xs = malloc((size_t)T * cols * sizeof *xs);
            for (int c = 0; c < T * cols; c++) xs[c] = frand() * (c % 5 == 0 ? 8.0f : 1.0f);
            if (cols > 40) xs[33] = 0.5f * xs[32]; /* exact halves on the grid */
            qxvec a, b;
            assert_true(qxvec_make(&a, ks[0], xs, T, cols, bits));
            for (int k = 1; k < nk; k++) {
                assert_true(qxvec_make(&b, ks[k], xs, T, cols, bits));
                size_t nb = (size_t)T * a.cols_p / QX_BLOCK, nl = (size_t)T * a.lanes;
                if (memcmp(a.q, b.q, (size_t)T * a.cols_p) != 0 || memcmp(a.s, b.s, nb * sizeof(float)) != 0 || memcmp(a.lane, b.lane, nl * sizeof(float)) != 0 ||
                    (bits == 4 && (memcmp(a.nsum, b.nsum, nl * sizeof(int32_t)) != 0 || memcmp(a.nsum8, b.nsum8, nl * sizeof(int32_t)) != 0)))
                    fail_msg("%s quantizer differs from the reference at %d columns, %d-bit layout", ks[k]->name, cols, bits);
                qxvec_free(&b);
            }
            qxvec_free(&a);
            free(xs);
        }
}

/* max |a - b| / max |b| */
static double nerr(const float *a, const float *b, size_t n)
{
    double d = 0, mx = 1e-30;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i])), mx = fmax(mx, fabs((double)b[i]));
    return d / mx;
}

static void check_shape(int bits, int rows, int cols, int group, bool asym)
{
    test_mat m = make(bits, rows, cols, group, asym);
    const qx_kernels *ks[3];
    int nk = kernel_sets(ks);
    static const int Ts[] = {1, 2, 3, 8};
    float *deq = malloc((size_t)rows * cols * sizeof(float));
    qmat_dequant_rows(&m.w, 0, rows, deq);
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int T = Ts[ti];
        float *x = malloc((size_t)T * cols * sizeof(float)), *ref = malloc((size_t)T * rows * sizeof(float)), *got = malloc((size_t)T * rows * sizeof(float));
        for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand() * (i % 11 == 0 ? 6.0f : 1.0f); /* some outliers */
        assert_true(qmat_mul_x8_with(ks[0], &m.w, x, T, ref));
        /* the reference within the activation rounding of the exact product */
        qxvec v;
        assert_true(qxvec_make(&v, ks[0], x, T, cols, bits));
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                double exact = 0, bound = 0, mag = 0;
                for (int c = 0; c < cols; c++) {
                    double wv = deq[(size_t)r * cols + c];
                    exact += wv * x[(size_t)t * cols + c];
                    bound += fabs(wv) * v.s[(size_t)t * (v.cols_p / 32) + c / 32] / 2;
                    mag += fabs(wv * x[(size_t)t * cols + c]);
                }
                double d = fabs(ref[(size_t)t * rows + r] - exact), lim = bound + 1e-6 * mag;
                if (d > lim) fail_msg("ref w%d %dx%d g%d %s T=%d row %d: |y - exact| %g > bound %g", bits, rows, cols, group, asym ? "asym" : "sym", T, r, d, lim);
                worst = fmax(worst, d / lim);
            }
        qxvec_free(&v);
        for (int k = 1; k < nk; k++) {
            memset(got, 0, (size_t)T * rows * sizeof(float));
            assert_true(qmat_mul_x8_with(ks[k], &m.w, x, T, got));
            double e = nerr(got, ref, (size_t)T * rows);
            if (e > 1e-5) fail_msg("%s w%d %dx%d g%d %s T=%d: normalized error %g vs ref", ks[k]->name, bits, rows, cols, group, asym ? "asym" : "sym", T, e);
        }
        free(x), free(ref), free(got);
    }
    free(deq);
    drop(&m);
}

static void kernels_match_reference(void **state)
{
    (void)state;
    check_shape(8, 37, 100, 0, false); /* columns: not a multiple of 32 or 64 */
    check_shape(8, 5, 7, 0, false);    /* narrower than a vector */
    check_shape(8, 70, 256, 0, false);
    check_shape(8, 3, 4100, 0, false);
    check_shape(4, 37, 96, 32, false); /* three groups of 32: a chunk cut short */
    check_shape(4, 37, 96, 32, true);
    check_shape(4, 17, 160, 32, false); /* a chunk and a group */
    check_shape(4, 17, 160, 32, true);
    check_shape(4, 19, 256, 64, true);
    check_shape(4, 9, 192, 64, false); /* the last chunk holds one group of 64 */
    check_shape(4, 9, 192, 64, true);
    check_shape(4, 33, 384, 128, false);
    check_shape(4, 33, 384, 128, true);
    check_shape(4, 5, 512, 256, true); /* a group spans two chunks */
    check_shape(4, 5, 512, 256, false);
    printf("# int8-activation kernels on this CPU: best '%s'\n", qx_kernels_best()->name);
}

/* Power-of-two scales and activations that quantize exactly (a block's max is 127/64, every
 * value a multiple of 1/64): every float product and sum is exact, so every kernel must give the
 * reference's floats bit for bit, which holds their integer dots to each other. */
static void check_exact(int bits, int rows, int cols, int group, bool asym)
{
    int G = bits == 8 ? cols : group, ng = cols / G, T = 3;
    size_t qbytes = bits == 8 ? (size_t)rows * cols : (size_t)rows * cols / 2;
    uint8_t *q = malloc(qbytes), *zero = asym ? malloc((size_t)rows * ng) : NULL;
    float *scale = malloc((size_t)rows * ng * sizeof *scale), *x = malloc((size_t)T * cols * sizeof *x);
    for (size_t i = 0; i < qbytes; i++) q[i] = (uint8_t)urand();
    if (bits == 8)
        for (size_t i = 0; i < qbytes; i++) q[i] = q[i] == 0x80 ? 0x81 : q[i]; /* RTN never writes -128 */
    for (int i = 0; i < rows * ng; i++) scale[i] = ldexpf(1.0f, (int)(urand() % 5) - 2);
    if (asym)
        for (int i = 0; i < rows * ng; i++) zero[i] = (uint8_t)(urand() % 16);
    for (int i = 0; i < T * cols; i++) {
        int v = (int)(urand() % 255) - 127;
        x[i] = (float)(i % cols % 32 == 5 ? 127 : v) / 64.0f;
    }
    qmat w = {bits, rows, cols, G, q, scale, zero, false};
    const qx_kernels *ks[3];
    int nk = kernel_sets(ks);
    float *ref = malloc((size_t)T * rows * sizeof *ref), *got = malloc((size_t)T * rows * sizeof *got);
    assert_true(qmat_mul_x8_with(ks[0], &w, x, T, ref));
    for (int k = 1; k < nk; k++) {
        assert_true(qmat_mul_x8_with(ks[k], &w, x, T, got));
        for (int i = 0; i < T * rows; i++)
            if (got[i] != ref[i]) fail_msg("%s w%d %dx%d g%d %s: y[%d] = %.9g, reference %.9g", ks[k]->name, bits, rows, cols, G, asym ? "asym" : "sym", i, got[i], ref[i]);
    }
    free(q), free(zero), free(scale), free(x), free(ref), free(got);
}

static void kernels_exact(void **state)
{
    (void)state;
    check_exact(8, 21, 300, 0, false);
    check_exact(4, 21, 352, 32, false);
    check_exact(4, 21, 352, 32, true);
    check_exact(4, 13, 320, 64, true);
    check_exact(4, 13, 512, 128, false);
    check_exact(4, 13, 512, 128, true);
}

/* what the integer kernels take, and the float path for the rest */
static void fallbacks(void **state)
{
    (void)state;
    test_mat m = make(4, 20, 192, 96, false);
    assert_false(qmat_x8_supported(&m.w));
    int T = 12;
    float *x = malloc((size_t)T * 256 * sizeof *x), *a = malloc((size_t)T * 20 * sizeof *a), *b = malloc((size_t)T * 20 * sizeof *b);
    for (int i = 0; i < T * 256; i++) x[i] = frand();
    assert_true(qmat_mul_x8(&m.w, x, 1, a));
    assert_true(qmat_mul(&m.w, x, 1, b));
    assert_memory_equal(a, b, 20 * sizeof *a);
    drop(&m);
    m = make(4, 20, 256, 128, true);
    assert_true(qmat_x8_supported(&m.w));
    assert_true(qmat_mul_x8(&m.w, x, T, a)); /* past QMAT_MAX_T rows: dequantize + sgemm */
    assert_true(qmat_mul(&m.w, x, T, b));
    assert_memory_equal(a, b, (size_t)T * 20 * sizeof *a);
    drop(&m);
    free(x), free(a), free(b);
}

/* The decode layout (qmatmul.h) holds the same bytes in another order: every kernel gives the same
 * floats bit for bit as on the rows one after another, for whole ranges and for ranges that start
 * or end inside a group of four rows (a thread's block), and past the last whole group; the
 * dequantization reads it back the same; the float path takes it through dequantize + sgemm. */
static void check_interleaved(int bits, int rows, int cols, int group, bool asym)
{
    test_mat m = make(bits, rows, cols, group, asym);
    assert_true(qmat_can_interleave(&m.w));
    size_t bytes = qmat_interleaved_bytes(&m.w), rb = qmat_row_bytes(&m.w), ng = (size_t)(cols / m.w.group);
    size_t header = (4 * ng * (asym ? 5 : 4) + 63) / 64 * 64;
    assert_int_equal(bytes, (size_t)rows * rb + (size_t)(rows / 4) * header);
    uint8_t *q = malloc(bytes);
    qmat_interleave(&m.w, q);
    qmat iw = m.w;
    iw.q = q;
    iw.interleaved = true;
    assert_false(qmat_can_interleave(&iw));
    /* the last whole group: its header (scales, then zero points), then row 3's first chunk three
     * chunks in; the first row past it right after, row after row */
    const uint8_t *g = q + (size_t)(rows / 4 - 1) * (header + 4 * rb);
    int r3 = rows / 4 * 4 - 1;
    assert_memory_equal(g, m.scale + (size_t)(r3 - 3) * ng, 4 * ng * sizeof(float));
    if (asym) assert_memory_equal(g + 4 * ng * sizeof(float), m.zero + (size_t)(r3 - 3) * ng, 4 * ng);
    assert_memory_equal(g + header + 3 * QMAT_ILV_BYTES, (uint8_t *)m.q + (size_t)r3 * rb, QMAT_ILV_BYTES);
    if (rb > QMAT_ILV_BYTES) assert_memory_not_equal(g + header + QMAT_ILV_BYTES, (uint8_t *)m.q + (size_t)(r3 - 3) * rb + QMAT_ILV_BYTES, QMAT_ILV_BYTES);
    if (rows % 4) assert_memory_equal(g + header + 4 * rb, (uint8_t *)m.q + (size_t)(r3 + 1) * rb, rb);
    float *a = malloc((size_t)rows * cols * sizeof *a), *b = malloc((size_t)rows * cols * sizeof *b);
    qmat_dequant_rows(&m.w, 1, rows, a);
    qmat_dequant_rows(&iw, 1, rows, b);
    assert_memory_equal(a, b, (size_t)(rows - 1) * cols * sizeof *a);
    const int T = 12;
    float *x = malloc((size_t)T * cols * sizeof *x), *ya = malloc((size_t)T * rows * sizeof *ya), *yb = malloc((size_t)T * rows * sizeof *yb);
    for (int i = 0; i < T * cols; i++) x[i] = frand();
    const qx_kernels *ks[3];
    int nk = kernel_sets(ks);
    const int ranges[][2] = {{0, rows}, {1, rows - 1}, {5, 6}, {2, 7}, {rows / 4 * 4 - 1, rows}};
    for (int k = 0; k < nk; k++)
        for (int t = 1; t <= QMAT_MAX_T; t += 3) {
            qxvec v;
            assert_true(qxvec_make(&v, ks[k], x, t, cols, bits));
            for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
                int r0 = ranges[i][0], r1 = ranges[i][1];
                if (r1 > rows || r0 >= r1) continue;
                memset(ya, 0, (size_t)t * rows * sizeof *ya), memset(yb, 0, (size_t)t * rows * sizeof *yb);
                (bits == 8 ? ks[k]->rows8 : ks[k]->rows4)(&m.w, r0, r1, &v, ya);
                (bits == 8 ? ks[k]->rows8 : ks[k]->rows4)(&iw, r0, r1, &v, yb);
                for (int j = 0; j < t * rows; j++)
                    if (ya[j] != yb[j])
                        fail_msg("%s w%d %dx%d g%d %s, T %d, rows [%d, %d): y[%d] = %.9g interleaved, %.9g row after row", ks[k]->name, bits, rows, cols,
                                 m.w.group, asym ? "asym" : "sym", t, r0, r1, j, yb[j], ya[j]);
            }
            qxvec_free(&v);
            assert_true(qmat_mul_x8_with(ks[k], &m.w, x, t, ya)); /* threaded, whole */
            assert_true(qmat_mul_x8_with(ks[k], &iw, x, t, yb));
            assert_memory_equal(ya, yb, (size_t)t * rows * sizeof *ya);
        }
    assert_true(qmat_mul(&m.w, x, T, ya)); /* many rows: dequantize + sgemm either way */
    assert_true(qmat_mul(&iw, x, T, yb));
    assert_memory_equal(ya, yb, (size_t)T * rows * sizeof *ya);
    assert_true(qmat_mul(&iw, x, 2, yb)); /* few rows: the float kernels read rows in order, so the same path */
    for (int j = 0; j < 2 * rows; j++) assert_float_equal(yb[j], ya[j], 1e-5 * (1 + fabsf(ya[j])));
    free(q), free(a), free(b), free(x), free(ya), free(yb);
    drop(&m);
}

static void interleaved(void **state)
{
    (void)state;
    check_interleaved(8, 13, 192, 0, false);
    check_interleaved(8, 35, 128, 0, false); /* enough rows for four streams at once (16 rows a step), and some left */
    check_interleaved(4, 41, 256, 32, true);
    check_interleaved(4, 70, 256, 64, false);
    check_interleaved(8, 4, 64, 0, false);
    check_interleaved(4, 9, 256, 32, false);
    check_interleaved(4, 22, 384, 64, true);
    check_interleaved(4, 8, 128, 128, false);
    check_interleaved(4, 37, 512, 128, true);
    check_interleaved(4, 11, 512, 256, false);
    /* rows of part of a chunk, or fewer than a group, stay row after row */
    test_mat m = make(8, 8, 96, 0, false);
    assert_false(qmat_can_interleave(&m.w));
    drop(&m);
    m = make(4, 8, 96, 32, true);
    assert_false(qmat_can_interleave(&m.w));
    drop(&m);
    m = make(4, 3, 256, 128, false);
    assert_false(qmat_can_interleave(&m.w));
    drop(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(quantizer), cmocka_unit_test(kernels_match_reference), cmocka_unit_test(kernels_exact),
                                       cmocka_unit_test(fallbacks), cmocka_unit_test(interleaved)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
