/* IDX files (the MNIST / Fashion-MNIST container): a big-endian header — two zero bytes, a type
 * byte, the number of dims, then each dim as a u32 — followed by the elements, row-major,
 * big-endian. Read through zlib, so gzipped (.gz, as Debian's dataset-fashion-mnist ships them)
 * and plain files both work.
 *
 * Validation is strict because a wrong header would otherwise mean a huge allocation or reading
 * labels as pixels: the magic's zero bytes and type, 1 to IDX_MAX_DIMS dims each >= 1, the data
 * size bounded by the real file size before anything is allocated (a plain file must hold exactly
 * header + data; a gzipped one can expand at most ~1032x, deflate's limit), then exactly that many
 * bytes must decompress and nothing may follow. Errors name the file and the field:
 *   "x.idx: IDX header: dims 10000x28x28 of ubyte need 7840000 bytes of data, the file holds 784" */
#ifndef SMELT_EVAL_IDX_H
#define SMELT_EVAL_IDX_H

#include <stdint.h>

#include "core/err.h"

#define IDX_MAX_DIMS 8

typedef struct {
    uint8_t type; /* 0x08 ubyte, 0x09 sbyte, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 */
    int ndim;
    int64_t dims[IDX_MAX_DIMS];
    int64_t numel;
    float *data; /* every element converted to float (exact for the 8- and 16-bit types) */
} idx_array;

/* Reads path (gzipped or plain). On error *out is zeroed and nothing is allocated. */
smelt_err *idx_read(const char *path, idx_array *out);
void idx_free(idx_array *a);

/* "ubyte", "float", ... for messages; "unknown" for anything else. */
const char *idx_type_name(uint8_t type);

#endif
