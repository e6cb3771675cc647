/* The IDX reader (plain and gzipped) and labelled sets from IDX pairs and CSV files: values read
 * back exactly, and each kind of bad file (wrong magic, truncated header, dims, or data, dims larger
 * than the file, trailing bytes, mismatched label files, ragged or non-numeric CSV lines) refused
 * with an error naming the file and the field. The files are written byte by byte here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "evals/idx.h"
#include "evals/labelled.h"

static char path_buf[4][96];

/* A temp path per slot, ending in ext (".gz" makes write_file gzip the bytes). */
static const char *tmp(int slot, const char *ext)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "/tmp/smelt_idx_test_%d_%d%s", (int)getpid(), slot, ext);
    return path_buf[slot];
}

static void write_file(const char *path, const void *data, size_t n)
{
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".gz") == 0) {
        gzFile gz = gzopen(path, "wb");
        assert_non_null(gz);
        if (n) assert_int_equal(gzwrite(gz, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(gz), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* An IDX header: type, dims; returns its length. */
static size_t header(uint8_t *buf, uint8_t type, int ndim, const uint32_t *dims)
{
    buf[0] = buf[1] = 0;
    buf[2] = type;
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        buf[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        buf[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        buf[7 + 4 * i] = (uint8_t)dims[i];
    }
    return 4 + 4 * (size_t)ndim;
}

/* idx_read must fail with kind and a message containing path and want. */
static void expect_idx_error(const char *path, smelt_err_kind kind, const char *want)
{
    idx_array a;
    smelt_err *err = idx_read(path, &a);
    if (!err) fail_msg("%s: read, expected an error containing '%s'", path, want);
    const char *msg = smelt_err_msg(err);
    if (!strstr(msg, path) || !strstr(msg, want)) fail_msg("error '%s' lacks the path or '%s'", msg, want);
    assert_int_equal(smelt_err_kind_of(err), kind);
    assert_null(a.data);
    smelt_err_free(err);
}

static void reads_plain_and_gz(void **state)
{
    (void)state;
    uint8_t buf[64];
    uint32_t dims[3] = {3, 2, 2};
    size_t h = header(buf, 0x08, 3, dims);
    for (int i = 0; i < 12; i++) buf[h + i] = (uint8_t)(i * 20 + 7);
    for (int gz = 0; gz < 2; gz++) {
        const char *p = tmp(0, gz ? ".gz" : ".idx");
        write_file(p, buf, h + 12);
        idx_array a;
        smelt_err *err = idx_read(p, &a);
        if (err) fail_msg("%s", smelt_err_msg(err));
        assert_int_equal(a.type, 0x08);
        assert_int_equal(a.ndim, 3);
        assert_int_equal(a.dims[0], 3);
        assert_int_equal(a.dims[2], 2);
        assert_int_equal(a.numel, 12);
        for (int i = 0; i < 12; i++) assert_true(a.data[i] == (float)(i * 20 + 7));
        idx_free(&a);
        unlink(p);
    }
    /* big-endian floats: 1.5 = 0x3FC00000, -2 = 0xC0000000 */
    uint32_t d1[1] = {2};
    h = header(buf, 0x0D, 1, d1);
    const uint8_t f[8] = {0x3F, 0xC0, 0, 0, 0xC0, 0, 0, 0};
    memcpy(buf + h, f, 8);
    const char *p = tmp(0, ".idx");
    write_file(p, buf, h + 8);
    idx_array a;
    assert_null(idx_read(p, &a));
    assert_true(a.data[0] == 1.5f && a.data[1] == -2.0f);
    idx_free(&a);
    unlink(p);
}

static void bad_files(void **state)
{
    (void)state;
    uint8_t buf[64] = {0};
    uint32_t dims[3] = {3, 2, 2};
    size_t h = header(buf, 0x08, 3, dims);
    const char *p = tmp(1, ".idx"), *g = tmp(2, ".gz");
    /* wrong magic: a non-zero first byte, an unknown type, zero or too many dims */
    buf[0] = 1;
    write_file(p, buf, h + 12);
    expect_idx_error(p, SMELT_E_CORRUPT, "IDX magic: found 0x01000803, expected 0x0000TTDD");
    buf[0] = 0, buf[2] = 0x0A;
    write_file(p, buf, h + 12);
    expect_idx_error(p, SMELT_E_CORRUPT, "IDX magic: found 0x00000a03");
    buf[2] = 0x08, buf[3] = 9;
    write_file(g, buf, h + 12);
    expect_idx_error(g, SMELT_E_CORRUPT, "IDX magic: found 0x00000809");
    buf[3] = 3;
    /* truncated: in the magic, in the dims, in the data (plain: caught from the size; gz: on reading) */
    write_file(p, buf, 2);
    expect_idx_error(p, SMELT_E_TRUNCATED, "IDX magic: the file has 2 bytes");
    write_file(g, buf, 10);
    expect_idx_error(g, SMELT_E_TRUNCATED, "IDX dims: the magic declares 3 dims (12 bytes), the file ends after 6 of them");
    write_file(p, buf, h + 8);
    expect_idx_error(p, SMELT_E_TRUNCATED, "IDX header: dims 3x2x2 of ubyte need 12 bytes of data, the file holds 8");
    write_file(g, buf, h + 8);
    expect_idx_error(g, SMELT_E_TRUNCATED, "IDX data: dims 3x2x2 of ubyte need 12 bytes, the data ends after 8");
    /* dims far larger than the file: refused before any allocation */
    uint32_t big[3] = {10000, 28, 28};
    h = header(buf, 0x08, 3, big);
    write_file(p, buf, h);
    expect_idx_error(p, SMELT_E_TRUNCATED, "IDX header: dims 10000x28x28 of ubyte need 7840000 bytes of data, the file holds 0");
    /* a few dozen gzipped bytes cannot inflate to 7.8 MB (deflate expands at most ~1032x) */
    write_file(g, buf, h);
    expect_idx_error(g, SMELT_E_CORRUPT, "IDX header: dims 10000x28x28 of ubyte need 7840000 bytes of data, the file holds at most (gzipped) ");
    uint32_t huge[4] = {4000000000u, 4000000000u, 4000000000u, 4};
    h = header(buf, 0x0E, 4, huge);
    write_file(g, buf, h);
    expect_idx_error(g, SMELT_E_CORRUPT, "IDX header: dims 4000000000x4000000000x4000000000x4 of double need more than");
    uint32_t zero[2] = {3, 0};
    h = header(buf, 0x08, 2, zero);
    write_file(p, buf, h);
    expect_idx_error(p, SMELT_E_CORRUPT, "IDX dims[1]: found 0, expected at least 1");
    /* bytes after the declared data */
    h = header(buf, 0x08, 3, dims);
    write_file(p, buf, h + 13);
    expect_idx_error(p, SMELT_E_CORRUPT, "IDX data: dims 3x2x2 of ubyte need 12 bytes after the 16-byte header, the file has 13 more");
    write_file(g, buf, h + 13);
    expect_idx_error(g, SMELT_E_CORRUPT, "IDX data: bytes follow the 12 the dims 3x2x2 of ubyte declare");
    /* not gzip data behind a gzip header */
    const uint8_t junk[24] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_file(p, junk, sizeof junk);
    expect_idx_error(p, SMELT_E_CORRUPT, "gzip data:");
    expect_idx_error("/nonexistent/x.idx", SMELT_E_IO, "No such file");
    unlink(p);
    unlink(g);
}

static void expect_set_error(smelt_err *err, const char *path, const char *want)
{
    if (!err) fail_msg("%s: loaded, expected an error containing '%s'", path, want);
    const char *msg = smelt_err_msg(err);
    if (!strstr(msg, path) || !strstr(msg, want)) fail_msg("error '%s' lacks the path or '%s'", msg, want);
    smelt_err_free(err);
}

static void idx_pairs(void **state)
{
    (void)state;
    uint8_t im[64], lb[64];
    uint32_t dims[3] = {3, 2, 2}, ld[1] = {3};
    size_t h = header(im, 0x08, 3, dims), lh = header(lb, 0x08, 1, ld);
    for (int i = 0; i < 12; i++) im[h + i] = (uint8_t)i;
    lb[lh] = 4, lb[lh + 1] = 0, lb[lh + 2] = 9;
    const char *ip = tmp(0, ".gz"), *lp = tmp(1, ".idx");
    write_file(ip, im, h + 12);
    write_file(lp, lb, lh + 3);
    labelled_set s;
    smelt_err *err = labelled_load_idx(ip, lp, &s);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.features, 4);
    assert_int_equal(s.feat_ndim, 2);
    assert_int_equal(s.feat_dims[0], 2);
    assert_int_equal(s.max_label, 9);
    assert_int_equal(s.y[0], 4);
    assert_int_equal(s.y[2], 9);
    assert_true(s.x[11] == 11.0f);
    labelled_free(&s);
    /* two labels for three images */
    ld[0] = 2;
    lh = header(lb, 0x08, 1, ld);
    write_file(lp, lb, lh + 2);
    expect_set_error(labelled_load_idx(ip, lp, &s), lp, "IDX dims[0]: 2 labels, expected one for each of the 3 examples");
    /* labels in 2 dims, a fractional label */
    uint32_t l2[2] = {3, 1};
    lh = header(lb, 0x08, 2, l2);
    write_file(lp, lb, lh + 3);
    expect_set_error(labelled_load_idx(ip, lp, &s), lp, "labels have 2 dims, expected 1");
    lh = header(lb, 0x0D, 1, (uint32_t[]){3});
    memset(lb + lh, 0, 12);
    lb[lh + 4] = 0x3F, lb[lh + 5] = 0xC0; /* 1.5 */
    write_file(lp, lb, lh + 12);
    expect_set_error(labelled_load_idx(ip, lp, &s), lp, "label 1 is 1.5, expected an integer class >= 0");
    unlink(ip);
    unlink(lp);
}

static void csv_files(void **state)
{
    (void)state;
    const char *p = tmp(3, ".csv");
    const char *good = "# two examples of three features\nlabel,a,b,c\n\n3, 0.5,1e2 ,-4\r\n0,1,2,3\n";
    write_file(p, good, strlen(good));
    labelled_set s;
    smelt_err *err = labelled_load_csv(p, &s);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.features, 3);
    assert_int_equal(s.y[0], 3);
    assert_int_equal(s.y[1], 0);
    assert_true(s.x[0] == 0.5f && s.x[1] == 100.0f && s.x[2] == -4.0f && s.x[5] == 3.0f);
    labelled_free(&s);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"1,2,3\n0,1\n", ":2: 1 features, expected 2 like line 1"},
        {"1,2,3\n0,1,abc\n", ":2: field 3: expected a finite number, found 'abc'"},
        {"1,2,3\n0,1,2,\n", ":2: field 4: expected a finite number, found ''"},
        {"-1,2,3\n", ":1: field 1 (the label): found -1, expected an integer class >= 0"},
        {"1.5,2,3\n", ":1: field 1 (the label): found 1.5"},
        {"1\n", ":1: a label and no features"},
        {"# nothing\n\n", "no examples, expected lines of label,feature,..."},
        {"a,b\nc,d\n", ":2: field 1: expected a finite number, found 'c'"},
        {"1,nan\n", ":1: field 2: expected a finite number, found 'nan'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(p, bad[i].text, strlen(bad[i].text));
        expect_set_error(labelled_load_csv(p, &s), p, bad[i].want);
    }
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_plain_and_gz),
        cmocka_unit_test(bad_files),
        cmocka_unit_test(idx_pairs),
        cmocka_unit_test(csv_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
