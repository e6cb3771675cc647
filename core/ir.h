/* The in-memory model every stage works on.
 *
 * Both import paths produce a smelt_model: a Hugging Face decoder becomes a graph of high-level
 * nodes (Embedding, RMSNorm, Linear, Attention, ...) over the checkpoint's named tensors, and an
 * ONNX file becomes its graph of ONNX nodes. Quantization, distillation, compilation and the
 * runtime all consume and produce this structure.
 *
 * Memory: the model owns everything reachable from it. Tensor data points either into mappings
 * the model holds (mmapped safetensors/artifacts: weights are never copied on load) or into blocks
 * allocated with smelt_model_alloc. smelt_model_free releases all of it.
 *
 * Shapes follow the source's convention, outermost dimension first. Linear weights are stored
 * [out_features, in_features] (GPT-2's Conv1D weights are transposed to that on import).
 */
#ifndef SMELT_IR_H
#define SMELT_IR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/err.h"
#include "core/io.h"
#include "core/strmap.h"

#define SMELT_MAX_DIMS 8

typedef enum { SMELT_QUANT_NONE = 0, SMELT_QUANT_PER_CHANNEL, SMELT_QUANT_GROUP } smelt_quant_kind;

/* How a quantized tensor maps back to real values: w = scale * (q - zero). Scales (and zero points)
 * live in tensors of their own, named here, so they are stored, hashed and mapped like any other. */
typedef struct {
    smelt_quant_kind kind;
    int bits;             /* 8 or 4 */
    int axis;             /* the per-channel axis (0 = output channels for Linear weights) */
    int group_size;       /* elements a group along the input axis, for SMELT_QUANT_GROUP */
    bool symmetric;       /* no zero point */
    char *scale;          /* name of the scale tensor (owned) */
    char *zero;           /* name of the zero-point tensor (owned), NULL when symmetric */
    smelt_dtype orig_dtype; /* the dtype before quantization */
} smelt_quant;

typedef struct {
    char *name;
    smelt_dtype dtype;
    int ndim;
    int64_t shape[SMELT_MAX_DIMS];
    void *data;    /* not owned by the tensor: see the model's storage */
    size_t nbytes; /* == smelt_dtype_nbytes(dtype, numel) */
    smelt_quant quant;
} smelt_tensor;

typedef enum {
    SMELT_ATTR_FLOAT,
    SMELT_ATTR_INT,
    SMELT_ATTR_STRING,
    SMELT_ATTR_FLOATS,
    SMELT_ATTR_INTS,
    SMELT_ATTR_STRINGS,
    SMELT_ATTR_TENSOR,
    SMELT_ATTR_GRAPH, /* a subgraph (If/Loop/Scan bodies): kept opaque for now */
} smelt_attr_type;

typedef struct {
    char *name;
    smelt_attr_type type;
    double f;
    int64_t i;
    char *s;        /* STRING: NUL-terminated, s_len bytes (ONNX strings may hold any bytes) */
    size_t s_len;
    size_t n;       /* element count for FLOATS / INTS / STRINGS */
    float *floats;
    int64_t *ints;
    char **strings;
    smelt_tensor *tensor; /* TENSOR: a constant owned by the attribute (data in model storage) */
} smelt_attr;

typedef struct {
    char *op;     /* "MatMul", "Conv" for ONNX; "Linear", "RMSNorm", ... for imported LLMs */
    char *domain; /* "" for the default ONNX domain, "smelt" for smelt's high-level ops */
    char *name;
    int n_inputs, n_outputs, n_attrs;
    char **inputs;  /* tensor/value names; "" marks an omitted optional input */
    char **outputs;
    smelt_attr *attrs;
} smelt_node;

/* A graph input or output: name, element type and dims; a dim < 0 is symbolic, named in dim_names. */
typedef struct {
    char *name;
    smelt_dtype dtype;
    int ndim;
    int64_t dims[SMELT_MAX_DIMS];
    char *dim_names[SMELT_MAX_DIMS];
} smelt_value;

typedef enum { SMELT_KIND_LLM = 1, SMELT_KIND_GRAPH } smelt_model_kind;

/* Hyper-parameters of a decoder LLM, normalized across families. */
typedef struct {
    int vocab_size, hidden, n_layers, n_heads, n_kv_heads, head_dim, ffn, max_pos;
    double rope_theta, norm_eps;
    bool tied_embeddings;
    bool attn_qkv_bias; /* Qwen2: q/k/v projections have biases */
    bool attn_out_bias;
    bool mlp_bias;
    int bos_id, eos_id;
    char act[24]; /* "silu" (Llama family) or "gelu_tanh" (GPT-2) */
    char norm[16]; /* "rmsnorm" or "layernorm" */
    char pos[16];  /* "rope" or "learned" */
} smelt_llm_config;

typedef struct {
    char *domain;
    int64_t version;
} smelt_opset;

typedef struct smelt_storage smelt_storage;

typedef struct {
    smelt_model_kind kind;
    char *arch;              /* "llama", "mistral", "qwen2", "gpt2", "onnx" */
    smelt_llm_config llm;    /* when kind == SMELT_KIND_LLM */
    char *hf_config_json;    /* original config.json text, kept for export (may be NULL) */
    char *tokenizer_json;    /* tokenizer.json text (may be NULL) */

    smelt_tensor *tensors;
    int n_tensors, cap_tensors;
    smelt_strmap tensor_index; /* name -> index into tensors */

    smelt_node *nodes;
    int n_nodes, cap_nodes;
    smelt_value *inputs, *outputs;
    int n_inputs, n_outputs;
    smelt_opset *opsets;
    int n_opsets;

    json_t *meta; /* free-form metadata: provenance (source files, hashes), producer, ... (owned) */
    smelt_storage *storage;
} smelt_model;

/* Allocates an empty model of the given kind; NULL on OOM. */
smelt_model *smelt_model_new(smelt_model_kind kind, const char *arch);
void smelt_model_free(smelt_model *m);

/* Allocates nbytes (64-byte aligned, zeroed) owned by the model; NULL on OOM. */
void *smelt_model_alloc(smelt_model *m, size_t nbytes);
/* Hands a file mapping to the model, which unmaps it on free. */
smelt_err *smelt_model_adopt_map(smelt_model *m, smelt_map *map);

/* Adds a tensor (name copied, data pointer kept as given). Fails on a duplicate name. The
 * returned pointer is valid until the next add. */
smelt_err *smelt_model_add_tensor(smelt_model *m, const char *name, smelt_dtype dt, int ndim,
                                  const int64_t *shape, void *data, smelt_tensor **out);
/* Finds a tensor by name; NULL if absent. */
smelt_tensor *smelt_model_find(const smelt_model *m, const char *name);

/* Appends a node; strings are copied. Returns a pointer to it (valid until the next add) or NULL. */
smelt_node *smelt_model_add_node(smelt_model *m, const char *op, const char *domain, const char *name,
                                 int n_in, const char *const *inputs, int n_out, const char *const *outputs);
/* Adds attributes to a node (copies name). */
bool smelt_node_set_int(smelt_node *n, const char *name, int64_t v);
bool smelt_node_set_float(smelt_node *n, const char *name, double v);
bool smelt_node_set_string(smelt_node *n, const char *name, const char *s);
/* Adds a zeroed attribute and returns it for the caller to fill (any type); NULL on OOM. */
smelt_attr *smelt_node_add_attr(smelt_node *n, const char *name, smelt_attr_type type);
const smelt_attr *smelt_node_attr(const smelt_node *n, const char *name);

/* Number of elements; 1 for a scalar (ndim 0). Returns -1 on overflow or a negative dim. */
int64_t smelt_shape_numel(int ndim, const int64_t *shape);
/* "[4096, 256]" into buf. */
const char *smelt_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);

/* Number of parameters: elements of floating-point and quantized weight tensors. Integer tensors
 * that are not quantized weights (ONNX shape constants, token ids) and the scales/zero points of
 * quantized weights are not counted. */
int64_t smelt_model_param_count(const smelt_model *m);

/* Checks the model is self-consistent: every tensor's nbytes matches dtype and shape, node inputs
 * name a tensor, a graph input or an earlier node output, quantization references exist. */
smelt_err *smelt_model_validate(const smelt_model *m);

/* Converts every f32/f16/bf16 weight tensor (not quantized ones) to dt, allocating new storage. */
smelt_err *smelt_model_convert_dtype(smelt_model *m, smelt_dtype dt);

#endif
