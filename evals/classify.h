/* Classifier suites: an ONNX graph (or its .smelt artifact) scored on labelled examples
 * (evals/labelled.h), batch by batch through the graph executor (runtime/graph/graph_exec.h).
 * Each example's features become the graph input as (value * scale - mean) / std (computed in
 * double, fed as float); the first graph output holds [batch, classes] scores whose argmax is the
 * prediction. Metrics: accuracy against the labels and, with a reference model run on the same
 * inputs, the reference's accuracy, the accuracy drop in points, agreement (the two argmaxes
 * equal) and the mean KL(reference || candidate) of the softmax of the two outputs (logits), in
 * nats. docs/results.md describes the result fields. */
#ifndef SMELT_EVAL_CLASSIFY_H
#define SMELT_EVAL_CLASSIFY_H

#include <jansson.h>

#include "core/ir.h"
#include "evals/suite.h"
#include "runtime/graph/graph_exec.h"

typedef struct {
    const char *path; /* as given to classify_open (borrowed), for messages */
    smelt_model *model;
    smelt_graph *graph;
} classify_model;

/* Opens path (.onnx graph or .smelt artifact of one) for running. Errors name the path. */
smelt_err *classify_open(const char *path, classify_model *out);
void classify_close(classify_model *m);

/* Scores every domain of s (all "task": "classify"). ref may be NULL (accuracy only) or equal to
 * cand (the candidate is the reference: its outputs are reused). *domains: {"NAME": {...}}. */
smelt_err *classify_run(const eval_suite *s, classify_model *cand, classify_model *ref, json_t **domains);

#endif
