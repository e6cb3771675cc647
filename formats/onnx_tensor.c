/* Decoding onnx.TensorProto values (initializers, Constant attributes, conformance-test .pb files)
 * into tensor data owned by a smelt_model.
 *
 * A TensorProto holds its elements in exactly one of three places: raw_data (little-endian bytes),
 * a typed repeated field (float_data, int32_data, ...), or an external file named in external_data.
 * Each is checked against the element count the dims imply before anything is allocated, so a
 * corrupt dims list cannot make us allocate more than the bytes the file really holds. Typed and
 * raw data are copied into model storage (protobuf-c's message is freed after import); external
 * files are mapped once, handed to the model, and tensors point into the mapping when aligned.
 */
#include "formats/onnx_tensor.h"

#include "formats/onnx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data and external data are little-endian; smelt assumes a little-endian host"
#endif

static const char *const type_names[] = {
    "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool",
    "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16", "float8e4m3fn",
    "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4", "float4e2m1",
};

const char *onnx_type_name(int onnx_type)
{
    if (onnx_type < 0 || onnx_type >= (int)(sizeof type_names / sizeof type_names[0])) return NULL;
    return type_names[onnx_type];
}

char *onnx_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

smelt_err *onnx_ctx_init(onnx_ctx *ctx, const char *path, smelt_model *m)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->path = path;
    ctx->m = m;
    const char *slash = strrchr(path, '/');
    if (!slash) ctx->dir = strdup(".");
    else if (slash == path) ctx->dir = strdup("/");
    else ctx->dir = strndup(path, (size_t)(slash - path));
    if (!ctx->dir) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    return NULL;
}

void onnx_ctx_free(onnx_ctx *ctx)
{
    for (int i = 0; i < ctx->n_ext; i++) free(ctx->ext[i].location);
    free(ctx->ext);
    free(ctx->dir);
    memset(ctx, 0, sizeof *ctx);
}

/* "float [128, 1]", for messages about sizes. */
static const char *type_shape_str(int onnx_type, const onnx_tensor_data *t, char *buf, size_t cap)
{
    char sb[160];
    const char *tn = onnx_type_name(onnx_type);
    snprintf(buf, cap, "%s %s", tn ? tn : "?", smelt_shape_str(t->ndim, t->shape, sb, sizeof sb));
    return buf;
}

/* Parses a non-negative decimal integer written as a string (external_data offset/length). */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Rejects locations that could read outside the model's folder: absolute paths and any '..'
 * component (a model from the internet must not be able to name /etc/shadow or ../../secrets). */
static smelt_err *check_location(const onnx_ctx *ctx, const char *what, const char *loc)
{
    if (!*loc) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data location is empty", ctx->path, what);
    if (loc[0] == '/')
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data location '%s' is an absolute path; it must be relative to the model's folder",
                         ctx->path, what, loc);
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data location '%s' escapes the model's folder", ctx->path, what, loc);
        p += n;
        if (*p == '/') p++;
    }
    return NULL;
}

/* Maps the external file once per import and hands the mapping to the model. */
static smelt_err *ext_file(onnx_ctx *ctx, const char *what, const char *loc, const onnx_ext_file **out)
{
    for (int i = 0; i < ctx->n_ext; i++)
        if (strcmp(ctx->ext[i].location, loc) == 0) {
            *out = &ctx->ext[i];
            return NULL;
        }
    onnx_ext_file *grown = realloc(ctx->ext, (size_t)(ctx->n_ext + 1) * sizeof *grown);
    if (!grown) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    ctx->ext = grown;
    char *full = smelt_path_join(ctx->dir, loc);
    char *loc_copy = strdup(loc);
    if (!full || !loc_copy) {
        free(full);
        free(loc_copy);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    smelt_map map;
    smelt_err *err = smelt_map_file(full, &map);
    free(full);
    if (err) {
        free(loc_copy);
        return smelt_err_wrap(err, "%s: %s: external data", ctx->path, what);
    }
    onnx_ext_file *f = &ctx->ext[ctx->n_ext];
    f->location = loc_copy;
    f->data = map.data;
    f->size = map.size;
    if ((err = smelt_model_adopt_map(ctx->m, &map))) {
        smelt_unmap(&map);
        free(loc_copy);
        return err;
    }
    ctx->n_ext++;
    *out = f;
    return NULL;
}

/* Bytes of one element's natural alignment: a pointer into a mapping is used as is only when it
 * has it, otherwise the bytes are copied to aligned storage. */
static size_t elem_align(smelt_dtype dt)
{
    int bits = smelt_dtype_traits(dt)->bits;
    return bits >= 8 ? (size_t)bits / 8 : 1;
}

static smelt_err *decode_external(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, int onnx_type, onnx_tensor_data *t)
{
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *k = e->key ? e->key : "", *v = e->value ? e->value : "";
        if (strcmp(k, "location") == 0) loc = v;
        else if (strcmp(k, "offset") == 0) off_s = v;
        else if (strcmp(k, "length") == 0) len_s = v;
        /* "checksum" (SHA-1 of the file) and unknown keys are advisory: ignored. */
    }
    if (!loc) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: data_location is EXTERNAL but external_data has no 'location'", ctx->path, what);
    SMELT_TRY(check_location(ctx, what, loc));
    uint64_t off = 0, len = 0;
    if (off_s && !parse_u64(off_s, &off))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data offset '%s' is not a non-negative integer", ctx->path, what, off_s);
    if (len_s && !parse_u64(len_s, &len))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data length '%s' is not a non-negative integer", ctx->path, what, len_s);
    const onnx_ext_file *f = NULL;
    SMELT_TRY(ext_file(ctx, what, loc, &f));
    if (off > f->size)
        return SMELT_ERR(SMELT_E_TRUNCATED, "%s: %s: external data offset %llu is past the end of '%s' (%zu bytes)", ctx->path, what,
                         (unsigned long long)off, loc, f->size);
    /* Without a length the data runs to the end of the file (as onnx.external_data_helper reads it). */
    if (!len_s) len = f->size - off;
    if (len > f->size - off)
        return SMELT_ERR(SMELT_E_TRUNCATED, "%s: %s: external data at offset %llu, length %llu runs past the end of '%s' (%zu bytes)", ctx->path,
                         what, (unsigned long long)off, (unsigned long long)len, loc, f->size);
    if (len != t->nbytes) {
        char ts[200];
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: external data is %llu bytes, expected %zu for %s", ctx->path, what, (unsigned long long)len,
                         t->nbytes, type_shape_str(onnx_type, t, ts, sizeof ts));
    }
    const uint8_t *src = f->data + off;
    if ((uintptr_t)src % elem_align(t->dtype) == 0 && t->nbytes > 0) {
        t->data = (void *)src; /* read-only mapping owned by the model */
        return NULL;
    }
    t->data = smelt_model_alloc(ctx->m, t->nbytes);
    if (!t->data) return SMELT_ERR(SMELT_E_NOMEM, "%s: %s: out of memory for %zu bytes", ctx->path, what, t->nbytes);
    if (t->nbytes) memcpy(t->data, src, t->nbytes);
    return NULL;
}

/* The typed repeated fields of a TensorProto, to find which one holds the data. */
enum { F_FLOAT, F_INT32, F_INT64, F_DOUBLE, F_UINT64, F_COUNT };
static const char *const field_names[F_COUNT] = {"float_data", "int32_data", "int64_data", "double_data", "uint64_data"};

/* Which typed field ONNX uses for dt (see onnx.proto's comments on each field). */
static int typed_field_for(smelt_dtype dt)
{
    switch (dt) {
    case SMELT_DT_F32: return F_FLOAT;
    case SMELT_DT_F64: return F_DOUBLE;
    case SMELT_DT_I64: return F_INT64;
    case SMELT_DT_U32:
    case SMELT_DT_U64: return F_UINT64;
    default: return F_INT32; /* int32, int16, int8, uint16, uint8, bool, float16, bfloat16, (u)int4 */
    }
}

/* Range an int32_data value must lie in for dt (16-bit floats are stored as their uint16 bits,
 * 4-bit types as one packed byte of two elements). */
static void int32_range(smelt_dtype dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case SMELT_DT_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case SMELT_DT_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case SMELT_DT_U8:
    case SMELT_DT_I4:
    case SMELT_DT_U4: *lo = 0, *hi = UINT8_MAX; break;
    case SMELT_DT_U16:
    case SMELT_DT_F16:
    case SMELT_DT_BF16: *lo = 0, *hi = UINT16_MAX; break;
    case SMELT_DT_BOOL: *lo = 0, *hi = 1; break;
    default: *lo = INT32_MIN, *hi = INT32_MAX; break;
    }
}

static smelt_err *decode_typed(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, int onnx_type, uint64_t numel, onnx_tensor_data *t)
{
    const size_t counts[F_COUNT] = {tp->n_float_data, tp->n_int32_data, tp->n_int64_data, tp->n_double_data, tp->n_uint64_data};
    int want_field = typed_field_for(t->dtype);
    const char *tn = onnx_type_name(onnx_type);
    for (int f = 0; f < F_COUNT; f++)
        if (f != want_field && counts[f])
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: has %s but its type is %s, which is stored in %s", ctx->path, what, field_names[f], tn,
                             field_names[want_field]);
    /* Packed 4-bit types store two elements in each int32_data entry. */
    uint64_t want = smelt_dtype_traits(t->dtype)->bits == 4 ? numel / 2 + (numel & 1) : numel;
    if (counts[want_field] != want) {
        char ts[200];
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: %s has %zu elements, expected %llu for %s", ctx->path, what, field_names[want_field],
                         counts[want_field], (unsigned long long)want, type_shape_str(onnx_type, t, ts, sizeof ts));
    }
    t->data = smelt_model_alloc(ctx->m, t->nbytes);
    if (!t->data) return SMELT_ERR(SMELT_E_NOMEM, "%s: %s: out of memory for %zu bytes", ctx->path, what, t->nbytes);
    if (want == 0) return NULL; /* an empty tensor: protobuf-c leaves the field NULL */
    switch (want_field) {
    case F_FLOAT: memcpy(t->data, tp->float_data, t->nbytes); return NULL;
    case F_INT64: memcpy(t->data, tp->int64_data, t->nbytes); return NULL;
    case F_DOUBLE: memcpy(t->data, tp->double_data, t->nbytes); return NULL;
    case F_UINT64:
        if (t->dtype == SMELT_DT_U64) {
            memcpy(t->data, tp->uint64_data, t->nbytes);
            return NULL;
        }
        for (size_t i = 0; i < want; i++) {
            if (tp->uint64_data[i] > UINT32_MAX)
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: uint64_data[%zu] is %llu, out of range for %s", ctx->path, what, i,
                                 (unsigned long long)tp->uint64_data[i], tn);
            ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
        }
        return NULL;
    default: break;
    }
    int64_t lo, hi;
    int32_range(t->dtype, &lo, &hi);
    size_t width = t->dtype == SMELT_DT_I4 || t->dtype == SMELT_DT_U4 ? 1 : elem_align(t->dtype);
    for (size_t i = 0; i < want; i++) {
        int32_t v = tp->int32_data[i];
        if (v < lo || v > hi)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: int32_data[%zu] is %d, out of range for %s", ctx->path, what, i, (int)v, tn);
        uint8_t *dst = (uint8_t *)t->data + i * width;
        if (width == 4) memcpy(dst, &v, 4);
        else if (width == 2) {
            uint16_t h = (uint16_t)v; /* int16 two's complement, or the uint16 bits */
            memcpy(dst, &h, 2);
        } else *dst = (uint8_t)v;
    }
    return NULL;
}

/* Decodes dtype and dims into t, rejecting types smelt does not handle and shapes that overflow. */
static smelt_err *decode_header(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, uint64_t *numel, onnx_tensor_data *t)
{
    int ty = tp->has_data_type ? tp->data_type : 0;
    const char *tn = onnx_type_name(ty);
    if (ty == 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: data type is undefined", ctx->path, what);
    t->dtype = smelt_dtype_from_onnx(ty);
    if (t->dtype == SMELT_DT_INVALID) {
        if (tn) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %s: data type %s (%d) is not supported", ctx->path, what, tn, ty);
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %s: unknown data type %d", ctx->path, what, ty);
    }
    if (tp->segment) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %s: segmented tensors are not supported", ctx->path, what);
    if (tp->n_dims > SMELT_MAX_DIMS)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %s: %zu dimensions, at most %d supported", ctx->path, what, tp->n_dims, SMELT_MAX_DIMS);
    t->ndim = (int)tp->n_dims;
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d = tp->dims[i];
        if (d < 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: dims[%d] is %lld, expected a non-negative size", ctx->path, what, i, (long long)d);
        if (d != 0 && n > (uint64_t)INT64_MAX / (uint64_t)d) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: dims overflow", ctx->path, what);
        n *= (uint64_t)d;
        t->shape[i] = d;
    }
    t->nbytes = smelt_dtype_nbytes(t->dtype, n);
    if (t->nbytes == SIZE_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: dims overflow", ctx->path, what);
    *numel = n;
    return NULL;
}

smelt_err *onnx_tensor_decode(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, onnx_tensor_data *out)
{
    memset(out, 0, sizeof *out);
    uint64_t numel = 0;
    SMELT_TRY(decode_header(ctx, tp, what, &numel, out));
    int ty = tp->data_type;
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (tp->has_data_location && !external && tp->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: unknown data_location %d", ctx->path, what, (int)tp->data_location);
    size_t typed = tp->n_float_data + tp->n_int32_data + tp->n_int64_data + tp->n_double_data + tp->n_uint64_data;
    if (external) {
        if (tp->has_raw_data || typed)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: data_location is EXTERNAL but the tensor also holds data in the file", ctx->path, what);
        return decode_external(ctx, tp, what, ty, out);
    }
    if (tp->n_external_data)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: has external_data but data_location is not EXTERNAL", ctx->path, what);
    if (!tp->has_raw_data) return decode_typed(ctx, tp, what, ty, numel, out);
    if (typed) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: has both raw_data and a typed data field", ctx->path, what);
    if (tp->raw_data.len != out->nbytes) {
        char ts[200];
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: raw_data is %zu bytes, expected %zu for %s", ctx->path, what, tp->raw_data.len, out->nbytes,
                         type_shape_str(ty, out, ts, sizeof ts));
    }
    out->data = smelt_model_alloc(ctx->m, out->nbytes);
    if (!out->data) return SMELT_ERR(SMELT_E_NOMEM, "%s: %s: out of memory for %zu bytes", ctx->path, what, out->nbytes);
    if (out->nbytes) memcpy(out->data, tp->raw_data.data, out->nbytes);
    return NULL;
}

smelt_err *onnx_read_tensor_pb(const char *path, smelt_model *m, const char *name, smelt_tensor **out)
{
    if (out) *out = NULL;
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, map.size, map.data);
    smelt_unmap(&map);
    if (!tp) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not a valid ONNX TensorProto (truncated or corrupt)", path);
    const char *nm = name ? name : tp->name ? tp->name : "";
    smelt_err *err = NULL;
    char *what = NULL;
    if (!*nm) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: the tensor has no name and none was given", path);
    else if (!(what = onnx_fmt("tensor '%s'", nm))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    onnx_ctx ctx = {0};
    onnx_tensor_data t;
    if (!err) err = onnx_ctx_init(&ctx, path, m);
    if (!err) err = onnx_tensor_decode(&ctx, tp, what, &t);
    if (!err) err = smelt_err_wrap(smelt_model_add_tensor(m, nm, t.dtype, t.ndim, t.shape, t.data, out), "%s", path);
    onnx_ctx_free(&ctx);
    free(what);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return err;
}
