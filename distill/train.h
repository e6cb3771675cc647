/* The distillation run: teacher and student, data, the optimizer loop with teacher logits computed
 * on the fly by the inference engine, periodic validation perplexity, checkpoints and the final
 * artifact. The library reports through callbacks; the tool prints and logs. */
#ifndef SMELT_DISTILL_TRAIN_H
#define SMELT_DISTILL_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ir.h"
#include "distill/adamw.h"
#include "quant/rtn.h"

#define DISTILL_MAX_VAL 16

typedef struct {
    int64_t step, steps;     /* steps done, of steps */
    double loss, ce, kl;     /* the step's mean loss and its parts (CE and KL per scored token) */
    double lr, grad_norm;
    int64_t tokens;          /* trained so far in this process */
    double tok_per_s, eta_s; /* throughput of this process's steps, and time left */
} distill_step_info;

typedef struct {
    int64_t step;
    int n;
    char names[DISTILL_MAX_VAL][64]; /* the val file's base name up to its first '.' */
    double ppl[DISTILL_MAX_VAL];
} distill_eval_info;

typedef struct {
    const char *teacher;                  /* HF folder or .smelt of a Llama-family or GPT-2 model */
    const char *keep_layers;              /* "0,2,4", or NULL */
    int keep_every;                       /* > 0, or 0 */
    const char *student_config;           /* config.json path, or NULL */
    const char *init;                     /* student's starting weights from this model (same names and shapes; quantized ones dequantized), or NULL */
    const char *const *data;              /* FILE[:WEIGHT] */
    int n_data;
    const char *const *val;               /* validation files (named by their base name up to the first '.') */
    int n_val;
    int val_windows;                      /* windows of 256 scored from the start of each val file */
    int64_t steps;
    int batch, seq, accum;
    uint64_t seed;
    float alpha, temp;
    adamw_opts opt;                       /* total_steps is filled from steps */
    int eval_every;                       /* 0: only before the first and after the last step */
    int checkpoint_every;                 /* 0: only on a stop request */
    const char *checkpoint_dir;           /* NULL: no checkpoints */
    bool resume;
    quant_scheme qat;                     /* bits 0: float student; 4 or 8: quantization-aware, the artifact quantized */
    const volatile sig_atomic_t *stop;    /* set by a signal handler: checkpoint and return */
    void (*on_step)(void *ctx, const distill_step_info *s);
    void (*on_eval)(void *ctx, const distill_eval_info *e);
    void *ctx;
} distill_opts;

typedef struct {
    int64_t steps_done, start_step;
    double final_loss;
    bool interrupted; /* stopped by *stop after writing a checkpoint; no artifact written */
    int64_t params, teacher_params;
    int student_layers;
    double tok_per_s;
    double cpu_s; /* CPU seconds (all threads) the training steps took */
    /* seconds in this process: teacher forward, student projections (sgemm), attention, loss,
     * other layers, optimizer, validation */
    double t_teacher, t_linear, t_attn, t_loss, t_other, t_opt, t_eval, t_total;
    distill_eval_info first_eval, last_eval;
    smelt_model *student; /* the trained (or, with 0 steps, initialised) student; the caller frees it */
} distill_result;

smelt_err *distill_run(const distill_opts *o, distill_result *r);

#endif
