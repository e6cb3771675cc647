/* Quantizing an ONNX graph's weights in place (a smelt_model of kind GRAPH): every float
 * initializer read only as the weight of MatMul ([K, N], channels N), Gemm ([N, K] with transB,
 * else [K, N]) or Conv ([M, C/group, k...], channels M) becomes int8, symmetric, one f32 scale per
 * output channel (RTN: scale = max|w| / 127, q = round(w / scale), half to even; quant/rtn.h),
 * the scale a tensor '<weight>.scale' [channels] named by the weight's quant fields (axis = the
 * channel axis in the weight's own shape, which is kept). Weights read by anything else (a Gather,
 * a Transpose: tied embeddings) stay float. The graph executor runs the int8 weights with its
 * int8 kernels (runtime/graph/gx.h). The recipe goes into m->meta["quantization"]. */
#ifndef SMELT_QUANTIZE_GRAPH_H
#define SMELT_QUANTIZE_GRAPH_H

#include "core/ir.h"
#include "quant/quantize_model.h"

/* Quantizes m per r (only w8 with method rtn: anything else is an error naming what is supported).
 * On success *rep (n_rep entries, freed with quant_report_free) lists each weight. Fails, leaving
 * m unusable, on an unsupported scheme or method, weights already quantized, or a graph with no
 * MatMul/Gemm/Conv weight to quantize. */
smelt_err *quantize_graph(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep, int *n_rep);

/* An ONNX decoder keeps its tokenizer.json beside the .onnx file: copies it into m (when m has
 * none and the file exists) so an artifact made from the graph runs on its own. */
smelt_err *quantize_graph_adopt_tokenizer(smelt_model *m, const char *onnx_path);

#endif
