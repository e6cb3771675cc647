/* A general CPU executor for IR graphs imported from ONNX (smelt_model of kind SMELT_KIND_GRAPH).
 *
 * Two steps, as in ggml: smelt_graph_load checks and plans the graph once (every node's op is
 * looked up in the op table and its attributes checked, nodes are ordered topologically, each
 * intermediate value's last use is recorded, nodes whose inputs are all constants are computed
 * once (constant folding), and a Relu reading only a Conv is fused into it); smelt_graph_run then runs it on named input tensors
 * as often as needed. Shapes are inferred at run time from the concrete shapes of the inputs (and,
 * for ops like Reshape or Expand, from the values computed on the way), so one loaded graph serves
 * any batch or sequence length. Intermediate buffers come from a pool owned by the graph: a buffer
 * goes back to the pool after the last node that reads it, and the pool is kept between runs.
 *
 * Supported: the default ONNX domain, opsets 7 to 17 (older attribute forms included, e.g. Split /
 * Squeeze / Unsqueeze / ReduceX taking axes as attributes), numpy broadcasting, f32 for every float
 * op (f64 and the integer types where the op needs them). An op or attribute value that is not
 * implemented is refused with an error of kind SMELT_E_UNSUPPORTED that names the node and the op:
 *   node 'x' (Foo): op 'Foo' is not supported
 *   node 'up' (Resize): attribute 'mode'='cubic' not supported
 * Inconsistent shapes give an SMELT_E_INVALID error naming the node and the shapes.
 *
 * Quantized weights (quant/quantize_graph.h): an int8, symmetric, per-channel initializer read as
 * the weight of MatMul, Gemm or Conv runs through int8 kernels: a few rows of activations stream
 * the int8 bytes through runtime/cpu/qmatmul's kernels (AVX-512 / AVX2 / scalar, chosen at run
 * time), more rows dequantize the weight into scratch once a call for an f32 sgemm. Read by any
 * other op, it is dequantized to f32 once at load. Other quantized forms (4-bit, zero points)
 * are refused at load with an SMELT_E_UNSUPPORTED error naming the tensor.
 *
 * Threading: a smelt_graph is not safe to run from two threads at once (the pool is shared);
 * load one graph per thread instead (weights are shared through the model, never copied). Large
 * kernels (MatMul, Gemm, Conv, pooling, Softmax) split their work over smelt's thread pool;
 * smelt_graph_load makes OpenBLAS single-threaded so two thread pools never compete for cores.
 */
#ifndef SMELT_GRAPH_EXEC_H
#define SMELT_GRAPH_EXEC_H

#include "core/ir.h"

typedef struct smelt_graph smelt_graph;

/* Plans model m (kind SMELT_KIND_GRAPH) for execution. The graph keeps pointers into m (weights,
 * node attributes), so m must outlive it. Returns an error (and *out untouched) when a node uses an
 * op, domain or attribute value the executor does not support, or when the graph is malformed (an
 * input no node produces, a cycle). On success the caller frees *out with smelt_graph_free. */
smelt_err *smelt_graph_load(const smelt_model *m, smelt_graph **out);

/* Runs the graph. inputs[0..n_inputs) name every graph input (smelt_tensor's name, dtype, ndim,
 * shape and data are used; the data is only read, and only during the call). Their dtypes and
 * fixed dims must match the model's declared inputs; symbolic dims take any size.
 *
 * On success *outputs is a new array of the model's outputs, in the model's order, *n_outputs long:
 * each has its name, dtype, shape, nbytes and data set, name and data malloc'd and owned by the
 * caller, who releases the whole array with smelt_graph_outputs_free. On error nothing is returned
 * and the message names the failing node. */
smelt_err *smelt_graph_run(smelt_graph *g, const smelt_tensor *inputs, int n_inputs, smelt_tensor **outputs, int *n_outputs);

/* Frees an output array from smelt_graph_run (NULL is fine). */
void smelt_graph_outputs_free(smelt_tensor *outputs, int n_outputs);

/* Frees the graph and its buffer pool (not the model). NULL is fine. */
void smelt_graph_free(smelt_graph *g);

/* True when op (default ONNX domain) has a kernel; the op table's names, for tools and reports. */
bool smelt_graph_op_supported(const char *op);

#endif
