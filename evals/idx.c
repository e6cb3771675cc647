/* IDX reader (see idx.h). */
#define _POSIX_C_SOURCE 200809L
#include "evals/idx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* deflate cannot expand input more than about 1032:1; with gzip's own framing this bounds what a
 * .gz file of a given size can hold, so a lying header is caught before the allocation. */
#define GZ_MAX_RATIO 1032

const char *idx_type_name(uint8_t type)
{
    switch (type) {
    case 0x08: return "ubyte";
    case 0x09: return "sbyte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

static int type_size(uint8_t type)
{
    switch (type) {
    case 0x08:
    case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C:
    case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static float convert(uint8_t type, const uint8_t *p)
{
    uint64_t v = be(p, type_size(type));
    switch (type) {
    case 0x08: return (float)p[0];
    case 0x09: return (float)(int8_t)p[0];
    case 0x0B: return (float)(int16_t)(uint16_t)v;
    case 0x0C: return (float)(int32_t)(uint32_t)v;
    case 0x0D: {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, &v, 8);
        return (float)d;
    }
    }
}

/* Reads exactly n bytes; *got says how many came (fewer at the end of the data). */
static smelt_err *read_full(gzFile gz, const char *path, void *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got > (1u << 30) ? (1u << 30) : n - *got;
        int r = gzread(gz, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: gzip data: %s", path, msg ? msg : "read error");
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return NULL;
}

static smelt_err *read_open(gzFile gz, const char *path, uint64_t file_bytes, idx_array *out)
{
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    SMELT_TRY(read_full(gz, path, head, 4, &got));
    if (got < 4) return SMELT_ERR(SMELT_E_TRUNCATED, "%s: IDX magic: the file has %zu bytes, expected a 4-byte magic and the dims", path, got);
    /* A plain file's size is known now; a gzipped one's is bounded by the compressed size. */
    bool direct = gzdirect(gz);
    uint64_t bound = direct ? file_bytes : file_bytes * GZ_MAX_RATIO;
    if (head[0] != 0 || head[1] != 0 || !type_size(head[2]) || head[3] < 1 || head[3] > IDX_MAX_DIMS)
        return SMELT_ERR(SMELT_E_CORRUPT,
                         "%s: IDX magic: found 0x%02x%02x%02x%02x, expected 0x0000TTDD (type TT one of 08 09 0B 0C 0D 0E, DD 1 to %d dims)", path,
                         head[0], head[1], head[2], head[3], IDX_MAX_DIMS);
    int ndim = head[3];
    SMELT_TRY(read_full(gz, path, head + 4, 4 * (size_t)ndim, &got));
    if (got < 4 * (size_t)ndim)
        return SMELT_ERR(SMELT_E_TRUNCATED, "%s: IDX dims: the magic declares %d dims (%d bytes), the file ends after %zu of them", path, ndim, 4 * ndim, got);
    uint64_t header = 4 + 4 * (uint64_t)ndim, elem = (uint64_t)type_size(head[2]), n = 1;
    /* Element counts are exact up to LIMIT (far beyond any file); past it only "more than". */
    const uint64_t LIMIT = (uint64_t)1 << 56;
    char dims[160] = "";
    size_t dl = 0;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = be(head + 4 + 4 * i, 4);
        if (d == 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: IDX dims[%d]: found 0, expected at least 1", path, i);
        out->dims[i] = (int64_t)d;
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%llu", i ? "x" : "", (unsigned long long)d);
        if (dl >= sizeof dims) dl = sizeof dims - 1;
        n = n > LIMIT / d ? LIMIT + 1 : n * d;
    }
    bool huge = n > LIMIT;
    uint64_t data = huge ? LIMIT : n * elem;
    if (huge || header + data > bound || (direct && header + data != file_bytes)) {
        if (!huge && direct && header + data < file_bytes)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: IDX data: dims %s of %s need %llu bytes after the %llu-byte header, the file has %llu more: expected exactly the data", path,
                             dims, idx_type_name(head[2]), (unsigned long long)data, (unsigned long long)header, (unsigned long long)(file_bytes - header));
        return SMELT_ERR(huge || !direct ? SMELT_E_CORRUPT : SMELT_E_TRUNCATED, "%s: IDX header: dims %s of %s need %s%llu bytes of data, the file holds %s%llu", path,
                         dims, idx_type_name(head[2]), huge ? "more than " : "", (unsigned long long)data, direct ? "" : "at most (gzipped) ",
                         (unsigned long long)(bound > header ? bound - header : 0));
    }
    uint8_t *raw = malloc(data ? data : 1);
    out->data = malloc(n * sizeof *out->data);
    if (!raw || !out->data) {
        free(raw);
        return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory for %llu elements", path, (unsigned long long)n);
    }
    smelt_err *err = read_full(gz, path, raw, data, &got);
    if (!err && got < data)
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: IDX data: dims %s of %s need %llu bytes, the data ends after %zu", path, dims, idx_type_name(head[2]),
                        (unsigned long long)data, got);
    if (!err) {
        uint8_t extra;
        err = read_full(gz, path, &extra, 1, &got);
        if (!err && got)
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: IDX data: bytes follow the %llu the dims %s of %s declare, expected the end of the file", path,
                            (unsigned long long)data, dims, idx_type_name(head[2]));
    }
    if (!err)
        for (uint64_t i = 0; i < n; i++) out->data[i] = convert(head[2], raw + i * elem);
    free(raw);
    out->type = head[2];
    out->ndim = ndim;
    out->numel = (int64_t)n;
    return err;
}

smelt_err *idx_read(const char *path, idx_array *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0) return SMELT_ERR(SMELT_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return SMELT_ERR(SMELT_E_IO, "%s: expected a regular file (an IDX file, gzipped or not)", path);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return SMELT_ERR(SMELT_E_IO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    gzbuffer(gz, 1 << 17);
    smelt_err *err = read_open(gz, path, (uint64_t)st.st_size, out);
    gzclose(gz);
    if (err) idx_free(out);
    return err;
}

void idx_free(idx_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
