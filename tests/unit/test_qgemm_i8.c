/* w8a8 kernels (runtime/cpu/qgemm_i8.h). Every kernel this CPU runs against the scalar reference
 * bit for bit on odd shapes (rows not a multiple of the 16-row panel or the 64-row tile, columns not
 * a multiple of 4, token counts that leave partial register tiles, row ranges starting mid-matrix);
 * the integer dots against int64 sums computed here from the unpacked weights; the activation
 * quantizer on hand-computed values (round half to even, the +128 offset); and the whole product
 * against float math in double within int8 rounding. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/cpu/qgemm_i8.h"

static uint64_t rng = 7;
static uint32_t urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33);
}
static float frand(void) { return (float)(urand() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }

/* every kernel but the reference that this CPU runs */
static int simd_kernels(const i8_kernels **out)
{
    int n = 0;
    if (i8_kernels_avx2()) out[n++] = i8_kernels_avx2();
    if (i8_kernels_vnni()) out[n++] = i8_kernels_vnni();
    return n;
}

/* xq in the form kernel k takes, from signed values */
static void to_form(const int8_t *s, size_t n, bool offset, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(offset ? s[i] + 128 : (uint8_t)s[i]);
}

static void check_exact(int rows, int cols, int T)
{
    int8_t *q = malloc((size_t)rows * cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++) q[i] = (int8_t)((int)(urand() % 256) - 128); /* -128 included: packing clamps it */
    float *ones = malloc((size_t)rows * sizeof(float)), *xs1 = malloc((size_t)T * sizeof(float));
    for (int r = 0; r < rows; r++) ones[r] = 1.0f;
    for (int t = 0; t < T; t++) xs1[t] = 1.0f;
    i8mat m;
    assert_true(i8mat_pack(&m, q, ones, rows, cols));
    int cols_p = m.cols_p;
    int8_t *xs8 = calloc((size_t)T * cols_p, 1);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < cols; c++) xs8[(size_t)t * cols_p + c] = (int8_t)((int)(urand() % 255) - 127);
    uint8_t *xq = malloc((size_t)T * cols_p);
    float *want = malloc((size_t)T * rows * sizeof(float)), *got = malloc((size_t)T * rows * sizeof(float));
    /* with unit scales the output is the integer dot itself (|dot| < 2^24 here: exact in f32) */
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) {
            int64_t s = 0;
            for (int c = 0; c < cols; c++) {
                int w = q[(size_t)r * cols + c];
                s += (int64_t)(w == -128 ? -127 : w) * xs8[(size_t)t * cols_p + c];
            }
            want[(size_t)t * rows + r] = (float)s;
        }
    const i8_kernels *ks[3] = {i8_kernels_ref()};
    int n = 1 + simd_kernels(ks + 1);
    for (int k = 0; k < n; k++) {
        to_form(xs8, (size_t)T * cols_p, ks[k]->offset, xq);
        memset(got, 0xff, (size_t)T * rows * sizeof(float));
        ks[k]->gemm(&m, xq, xs1, T, 0, rows, got);
        for (size_t i = 0; i < (size_t)T * rows; i++)
            if (got[i] != want[i])
                fail_msg("%s %dx%d T=%d: dot [%zu][%zu] = %.0f, expected %.0f", ks[k]->name, rows, cols, T, i / rows, i % rows, got[i], want[i]);
        /* a row range from a panel boundary on leaves the rows before it alone */
        if (rows > 16) {
            memset(got, 0, (size_t)T * rows * sizeof(float));
            ks[k]->gemm(&m, xq, xs1, T, 16, rows, got);
            for (int t = 0; t < T; t++)
                for (int r = 0; r < rows; r++) {
                    float w = r < 16 ? 0.0f : want[(size_t)t * rows + r];
                    if (got[(size_t)t * rows + r] != w) fail_msg("%s %dx%d T=%d rows 16..: [%d][%d] = %g, expected %g", ks[k]->name, rows, cols, T, t, r,
                                                                 got[(size_t)t * rows + r], w);
                }
        }
    }
    i8mat_free(&m);
    free(q), free(ones), free(xs1), free(xs8), free(xq), free(want), free(got);
}

static void integer_dots_exact(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {5, 3}, {15, 7}, {16, 4}, {17, 65}, {33, 255}, {64, 64}, {70, 130}, {100, 257}, {129, 36}};
    static const int Ts[] = {1, 2, 5, 6, 7, 13, 70};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++) check_exact(shapes[s][0], shapes[s][1], Ts[t]);
    printf("# w8a8 kernels on this CPU: best '%s'\n", i8_kernels_best()->name);
}

/* real scales and float activations: every kernel, through i8_mul (threads, tiles), gives the
 * reference's floats bit for bit, and those are within int8 rounding of the float product */
static void products_match_reference(void **state)
{
    (void)state;
    static const int shapes[][3] = {{37, 100, 1}, {37, 100, 9}, {200, 67, 130}, {768, 256, 3}, {19, 768, 65}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], T = shapes[s][2];
        int8_t *q = malloc((size_t)rows * cols);
        float *sc = malloc((size_t)rows * sizeof(float)), *x = malloc((size_t)T * cols * sizeof(float));
        for (size_t i = 0; i < (size_t)rows * cols; i++) q[i] = (int8_t)((int)(urand() % 255) - 127);
        for (int r = 0; r < rows; r++) sc[r] = 0.001f * (1 + r % 5);
        for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand() * (1 + (float)(i % 3));
        i8mat m;
        assert_true(i8mat_pack(&m, q, sc, rows, cols));
        float *ref = malloc((size_t)T * rows * sizeof(float)), *got = malloc((size_t)T * rows * sizeof(float));
        assert_true(i8_mul(i8_kernels_ref(), &m, x, T, ref));
        double num = 0, den = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                double d = 0;
                for (int c = 0; c < cols; c++) d += (double)q[(size_t)r * cols + c] * sc[r] * x[(size_t)t * cols + c];
                double e = ref[(size_t)t * rows + r] - d;
                num += e * e, den += d * d;
            }
        /* activations rounded to 1/254 of their range: a few tenths of a percent in norm */
        if (sqrt(num / den) > 0.01) fail_msg("ref %dx%d T=%d: relative error %g", rows, cols, T, sqrt(num / den));
        const i8_kernels *ks[2];
        int n = simd_kernels(ks);
        for (int k = 0; k < n; k++) {
            memset(got, 0, (size_t)T * rows * sizeof(float));
            assert_true(i8_mul(ks[k], &m, x, T, got));
            if (memcmp(got, ref, (size_t)T * rows * sizeof(float)) != 0) fail_msg("%s %dx%d T=%d: differs from the reference", ks[k]->name, rows, cols, T);
        }
        i8mat_free(&m);
        free(q), free(sc), free(x), free(ref), free(got);
    }
}

static void activation_quantizer(void **state)
{
    (void)state;
    /* amax 2 -> 127/2 a unit: 2 -> 127, -1 -> -63.5 -> -64 (half to even), 0.5 -> 31.75 -> 32,
     * 1/127 * 2 * 0.5 -> 0.5 -> 0 (even) */
    float x[5] = {2.0f, -1.0f, 0.5f, 0.0f, 1.0f / 127.0f};
    uint8_t q[2][8];
    float xs;
    i8_quantize_rows(x, 1, 5, 8, false, q[0], &xs);
    assert_true(xs == 2.0f / 127.0f);
    int want[8] = {127, -64, 32, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) assert_int_equal((int8_t)q[0][i], want[i]);
    i8_quantize_rows(x, 1, 5, 8, true, q[1], &xs);
    for (int i = 0; i < 8; i++) assert_int_equal(q[1][i], want[i] + 128);
    /* an all-zero row: zero scale and q */
    float z[3] = {0};
    i8_quantize_rows(z, 1, 3, 4, false, q[0], &xs);
    assert_true(xs == 0.0f);
    for (int i = 0; i < 4; i++) assert_int_equal(q[0][i], 0);

    /* each kernel's vectorized quantizer: the scalar one's bytes and scales, on widths around the
     * vector lengths, values that land on .5 steps included */
    static const int widths[] = {1, 15, 16, 17, 31, 32, 33, 100, 257};
    const i8_kernels *ks[2];
    int nk = simd_kernels(ks);
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        int cols = widths[wi], cols_p = (cols + 3) & ~3, T = 5;
        float *xr = malloc((size_t)T * cols * sizeof(float)), xs_ref[5], xs_got[5];
        uint8_t *qref = malloc((size_t)T * cols_p), *got = malloc((size_t)T * cols_p);
        for (int i = 0; i < T * cols; i++) xr[i] = i % 5 == 0 ? (float)(i % 11) * 0.5f - 2.5f : frand() * 3;
        for (int k = 0; k < nk; k++) {
            i8_quantize_rows(xr, T, cols, cols_p, ks[k]->offset, qref, xs_ref);
            memset(got, 0x55, (size_t)T * cols_p);
            ks[k]->quant(xr, T, cols, cols_p, got, xs_got);
            if (memcmp(qref, got, (size_t)T * cols_p) != 0 || memcmp(xs_ref, xs_got, sizeof xs_ref) != 0)
                fail_msg("%s quantizer, %d columns: differs from the scalar one", ks[k]->name, cols);
        }
        free(xr), free(qref), free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(integer_dots_exact), cmocka_unit_test(products_match_reference),
                                       cmocka_unit_test(activation_quantizer)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
