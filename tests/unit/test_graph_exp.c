/* The graph executor's vectorized exp, softmax row and sigmoid (runtime/graph/gx_compute.c, the
 * widest variant this CPU runs) against double-precision libm: every length from 1 to 70 (vector
 * tails), arguments across the whole f32 range of exp including the edges where it over- and
 * underflows, and NaN / infinities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/rng.h"
#include "runtime/graph/gx.h"

static float urange(uint64_t *s, float lo, float hi) { return lo + (hi - lo) * (float)((double)(smelt_splitmix64(s) >> 11) / 9007199254740992.0); }

/* |got - want| within a few ulp of want (relative 5e-7), or both the same special value. */
static void near(float got, double want, const char *what, float arg)
{
    if (isnan(want) && isnan(got)) return;
    if (isinf(want) && got == (float)want) return;
    if (fabs(got - want) <= 5e-7 * fabs(want) + 1e-45) return;
    fail_msg("%s(%.9g) = %.9g, expected %.9g", what, arg, got, want);
}

static void exp_values(void **state)
{
    (void)state;
    uint64_t s = 1;
    for (int n = 1; n <= 70; n++) {
        float x[70], y[70];
        for (int i = 0; i < n; i++) x[i] = urange(&s, -103.9f, 88.7f);
        gx_exp_f32(x, y, n);
        for (int i = 0; i < n; i++) near(y[i], exp((double)x[i]), "exp", x[i]);
    }
    /* edges: results down in the denormals, overflow, underflow to 0 below -103.97, specials */
    float x[] = {0.0f, -0.0f, 1.0f, -87.5f, -100.0f, -103.9f, -104.0f, -1000.0f, 88.72f, 88.73f, 100.0f, INFINITY, -INFINITY, NAN, 1e-8f, -1e-8f, 0.5f};
    float want0[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, INFINITY, INFINITY, INFINITY, 0, NAN, 0, 0, 0}; /* 0: from libm */
    int n = (int)(sizeof x / sizeof *x);
    float y[32];
    gx_exp_f32(x, y, n);
    for (int i = 0; i < n; i++) {
        double want = want0[i] != 0 || isnan(want0[i]) ? want0[i] : exp((double)x[i]);
        if (x[i] < -103.97f) want = 0;
        if (fabs(want) < 1.2e-38 && fabs(want) > 0) { /* denormal results: within one denormal step */
            if (fabs(y[i] - want) > 1.5e-45) fail_msg("exp(%.9g) = %.9g, expected %.9g", x[i], y[i], want);
            continue;
        }
        near(y[i], want, "exp", x[i]);
    }
}

static void softmax_rows(void **state)
{
    (void)state;
    uint64_t s = 2;
    for (int n = 1; n <= 70; n++) {
        float x[70], y[70];
        for (int i = 0; i < n; i++) x[i] = urange(&s, -30.0f, 30.0f);
        if (n > 3) x[n / 2] = -INFINITY, x[1] = -1e30f; /* masked positions: exactly 0 */
        gx_softmax_row_f32(x, y, n);
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
        for (int i = 0; i < n; i++) {
            /* x - max is rounded to f32 first (half an ulp of |x - max|), then a few ulp */
            double want = exp((double)x[i] - mx) / sum, tol = (6e-8 * fabs(x[i] - mx) + 5e-7) * want + 1e-30;
            if (fabs(y[i] - want) > tol) fail_msg("softmax n=%d: y[%d] = %.9g, expected %.9g", n, i, y[i], want);
        }
        if (n > 3) assert_true(y[n / 2] == 0.0f && y[1] == 0.0f);
    }
    /* in place, and a NaN never taken as the maximum */
    float x[5] = {1, NAN, 2, 3, 4};
    gx_softmax_row_f32(x, x, 5);
    assert_true(isnan(x[1]));
    near(x[4], exp(0.0) / (exp(-3.0) + exp(-2.0) + exp(-1.0) + 1 + NAN), "softmax", 4); /* the NaN propagates to the sum */
}

static void sigmoid_values(void **state)
{
    (void)state;
    uint64_t s = 3;
    for (int n = 1; n <= 70; n++) {
        float x[70], y[70];
        for (int i = 0; i < n; i++) x[i] = urange(&s, -90.0f, 90.0f);
        gx_sigmoid_f32(x, y, n);
        for (int i = 0; i < n; i++) near(y[i], 1.0 / (1.0 + exp(-(double)x[i])), "sigmoid", x[i]);
    }
    float x[] = {0.0f, INFINITY, -INFINITY, NAN, 200.0f, -200.0f};
    float y[6];
    gx_sigmoid_f32(x, y, 6);
    assert_true(y[0] == 0.5f && y[1] == 1.0f && y[2] == 0.0f && isnan(y[3]) && y[4] == 1.0f && y[5] == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_values),
        cmocka_unit_test(softmax_rows),
        cmocka_unit_test(sigmoid_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
