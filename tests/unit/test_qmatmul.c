/* Quantized kernels and RTN. Every SIMD kernel this CPU runs against the scalar reference on odd
 * shapes (rows not a multiple of the thread grain, int8 columns not a multiple of the vector width,
 * 4-bit group boundaries, 1 to 8 rows of x, and the sgemm path past that), normalized error within
 * f32 rounding; the reference itself against dequantize-then-multiply in double; RTN's rules on
 * hand-computed values (round half to even, clamping, zero points, all-zero groups). */
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
#include "runtime/cpu/qmatmul.h"

static uint64_t rng = 1;
static float frand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
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

static void drop(test_mat *m)
{
    free(m->q), free(m->scale), free(m->zero), free(m->wf);
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
    const qmat_kernels *ks[3] = {qmat_kernels_ref(), qmat_kernels_avx2(), qmat_kernels_avx512()};
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    static const int Ts[] = {1, 2, 3, 8, 12};
    float *deq = malloc((size_t)rows * cols * sizeof(float));
    qmat_dequant_rows(&m.w, 0, rows, deq);
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int T = Ts[ti];
        float *x = malloc((size_t)T * cols * sizeof(float)), *want = malloc((size_t)T * rows * sizeof(float));
        float *ref = malloc((size_t)T * rows * sizeof(float)), *got = malloc((size_t)T * rows * sizeof(float));
        for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand();
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                double s = 0;
                for (int c = 0; c < cols; c++) s += (double)deq[(size_t)r * cols + c] * x[(size_t)t * cols + c];
                want[(size_t)t * rows + r] = (float)s;
            }
        assert_true(qmat_mul_with(ks[0], &m.w, x, T, ref));
        double e = nerr(ref, want, (size_t)T * rows);
        if (e > 1e-5) fail_msg("ref w%d %dx%d g%d %s T=%d: normalized error %g", bits, rows, cols, group, asym ? "asym" : "sym", T, e);
        for (int k = 1; k < 3; k++) {
            if (!ks[k] || (k == 1 && !avx2) || (k == 2 && !avx512)) continue;
            memset(got, 0, (size_t)T * rows * sizeof(float));
            assert_true(qmat_mul_with(ks[k], &m.w, x, T, got));
            e = nerr(got, ref, (size_t)T * rows);
            if (e > 1e-5) fail_msg("%s w%d %dx%d g%d %s T=%d: normalized error %g vs ref", ks[k]->name, bits, rows, cols, group, asym ? "asym" : "sym", T, e);
        }
        free(x), free(want), free(ref), free(got);
    }
    free(deq);
    drop(&m);
}

static void kernels_match_reference(void **state)
{
    (void)state;
    check_shape(8, 37, 100, 0, false);  /* columns: not a multiple of 32 or 64 */
    check_shape(8, 5, 7, 0, false);     /* narrower than a vector */
    check_shape(8, 70, 256, 0, false);
    check_shape(4, 37, 96, 32, false);  /* three groups of 32 */
    check_shape(4, 37, 96, 32, true);
    check_shape(4, 19, 256, 64, true);
    check_shape(4, 33, 384, 128, false);
    check_shape(4, 33, 384, 128, true);
    printf("# kernels on this CPU: best '%s'\n", qmat_kernels_best()->name);
}

static void rtn_rules(void **state)
{
    (void)state;
    /* w4 sym, one group of 32: max |w| = 7 -> scale 1; 2.5 -> 2 and 3.5 -> 4 (half to even); -7.6 clamps... */
    float w[32] = {7, -7, 2.5f, 3.5f, -2.5f, 0.49f, -0.51f, 6.6f};
    uint8_t q[16];
    float sc;
    quant_scheme s4 = {4, 32, false};
    rtn_quantize(w, 1, 32, &s4, q, &sc, NULL);
    assert_true(sc == 1.0f);
    int want[8] = {7, -7, 2, 4, -2, 0, -1, 7};
    for (int i = 0; i < 8; i++) {
        int v = (q[i / 2] >> ((i & 1) * 4)) & 15;
        assert_int_equal((v ^ 8) - 8, want[i]);
    }
    /* w4 asym: lo = -1.5, hi = 6 -> scale 0.5, zero 3; 6 -> 12+3 = 15, -1.5 -> 0, 0.25 -> round(0.5)=0 (even) + 3 */
    float a[32] = {6, -1.5f, 0.25f, 0.75f};
    uint8_t qa[16], z;
    quant_scheme s4a = {4, 32, true};
    rtn_quantize(a, 1, 32, &s4a, qa, &sc, &z);
    assert_true(sc == 0.5f);
    assert_int_equal(z, 3);
    assert_int_equal(qa[0] & 15, 15);
    assert_int_equal(qa[0] >> 4, 0);
    assert_int_equal(qa[1] & 15, 3);
    assert_int_equal(qa[1] >> 4, 5); /* 0.75 / 0.5 = 1.5 -> 2, + 3 */
    /* all zeros: scale 1, values exactly 0 */
    float zeros[32] = {0};
    rtn_quantize(zeros, 1, 32, &s4a, qa, &sc, &z);
    assert_true(sc == 1.0f);
    assert_int_equal(z, 0);
    /* w8: scale max/127 */
    float w8[4] = {127, -63.5f, 0.5f, 1.5f};
    int8_t q8[4];
    quant_scheme s8 = {8, 0, false};
    rtn_quantize(w8, 1, 4, &s8, q8, &sc, NULL);
    assert_true(sc == 1.0f);
    assert_int_equal(q8[0], 127);
    assert_int_equal(q8[1], -64);
    assert_int_equal(q8[2], 0);
    assert_int_equal(q8[3], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(kernels_match_reference), cmocka_unit_test(rtn_rules)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
