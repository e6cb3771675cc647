/* Element types and their traits, plus exact f16/bf16 <-> f32 conversion.
 *
 * One table (smelt_dtype_traits) describes every dtype: its name in smelt, in safetensors and in
 * ONNX, and its size in bits. Packed 4-bit types store two elements a byte, the element with the
 * lower index in the low nibble.
 */
#ifndef SMELT_DTYPE_H
#define SMELT_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SMELT_DT_INVALID = 0,
    SMELT_DT_F32,
    SMELT_DT_F16,
    SMELT_DT_BF16,
    SMELT_DT_F64,
    SMELT_DT_I8,
    SMELT_DT_U8,
    SMELT_DT_I16,
    SMELT_DT_U16,
    SMELT_DT_I32,
    SMELT_DT_U32,
    SMELT_DT_I64,
    SMELT_DT_U64,
    SMELT_DT_BOOL,
    SMELT_DT_I4, /* signed 4-bit, two's complement, packed two a byte */
    SMELT_DT_U4, /* unsigned 4-bit, packed two a byte */
    SMELT_DT_COUNT
} smelt_dtype;

typedef struct {
    const char *name;        /* smelt's own name, used in manifests and --dtype: "f32", "bf16", "i4" */
    const char *safetensors; /* safetensors header name ("F32"), NULL if safetensors has none */
    int onnx;                /* onnx.TensorProto.DataType value, 0 if ONNX has none */
    int bits;                /* bits per element: 4, 8, 16, 32 or 64 */
    bool is_float;
} smelt_dtype_info;

const smelt_dtype_info *smelt_dtype_traits(smelt_dtype dt);
const char *smelt_dtype_name(smelt_dtype dt);
/* Lookups return SMELT_DT_INVALID when the name or code is unknown. */
smelt_dtype smelt_dtype_from_name(const char *name);
smelt_dtype smelt_dtype_from_safetensors(const char *name);
smelt_dtype smelt_dtype_from_onnx(int onnx_type);

/* Bytes needed for n elements, or SIZE_MAX if that overflows. Packed types round up. */
size_t smelt_dtype_nbytes(smelt_dtype dt, uint64_t n);

/* Conversions round to nearest, ties to even; NaN stays NaN (quiet, sign kept), infinities and
 * subnormals are preserved where the target can represent them. */
float smelt_f16_to_f32(uint16_t h);
uint16_t smelt_f32_to_f16(float f);
float smelt_bf16_to_f32(uint16_t b);
uint16_t smelt_f32_to_bf16(float f);

/* Converts n elements between f32, f16 and bf16 (any pair, including same-type copies). Returns
 * false if either dtype is not one of those three. */
bool smelt_convert_float(void *dst, smelt_dtype dst_dt, const void *src, smelt_dtype src_dt, size_t n);

#endif
