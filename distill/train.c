/* The distillation loop (see train.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "distill/checkpoint.h"
#include "distill/data.h"
#include "distill/qat.h"
#include "distill/step.h"
#include "distill/student.h"
#include "evals/perplexity.h"
#include "formats/load.h"
#include "formats/tokenizer.h"
#include "quant/quantize_model.h"
#include "runtime/llm.h"

/* the perplexity protocol's window (data/README.md), shortened to the student's context when that is
 * shorter (a GPT-2 with n_positions 128 has no position 128) */
#define VAL_WINDOW 256

typedef struct {
    char name[64];
    int32_t *ids;
    size_t n;
} val_set;

typedef struct {
    const distill_opts *o;
    distill_result *r;
    smelt_model *teacher;
    smelt_tokenizer *tok;
    llm_engine *teng;
    llm_seq **tseqs;
    tm_model *m;
    tm_acts *acts;
    adamw_state adam;
    dd_loader *data;
    val_set val[DISTILL_MAX_VAL];
    int n_val, val_window;
    int32_t *ids, *targets;
    float *tlogits;
    bool fq_active; /* m->w holds the fake-quantized weights, fq the master */
    float *fq; /* QAT: the fake-quantized weights the passes run on (m->w stays the float master) */
    json_t *fingerprint;
    char *ckpt_path;
    int *layers;
    int n_layers;
} run;

static smelt_err *load_val(run *R, int32_t eos)
{
    const distill_opts *o = R->o;
    for (int i = 0; i < o->n_val; i++) {
        val_set *v = &R->val[R->n_val++];
        const char *base = smelt_path_base(o->val[i]);
        snprintf(v->name, sizeof v->name, "%.*s", (int)strcspn(base, "."), base);
        char *text = NULL;
        size_t len = 0;
        SMELT_TRY(smelt_read_file(o->val[i], (size_t)1 << 32, &text, &len));
        smelt_err *err = smelt_err_wrap(ppl_tokens_from_text(R->tok, text, len, eos, &v->ids, &v->n), "%s", o->val[i]);
        free(text);
        if (err) return err;
        if (v->n < (size_t)R->val_window) return SMELT_ERR(SMELT_E_INVALID, "%s: %zu tokens, not one validation window of %d", o->val[i], v->n, R->val_window);
        size_t cap = (size_t)o->val_windows * R->val_window;
        if (o->val_windows > 0 && v->n > cap) v->n = cap;
    }
    return NULL;
}

/* With QAT, exchanges the master weights and their fake-quantized copy (refreshed on the way in), so
 * the passes between two calls see the quantized model and everything else the master. */
static void qat_swap(run *R)
{
    if (!R->fq) return;
    if (!R->fq_active) qat_fake_quantize(R->m, R->m->w, R->fq, &R->o->qat);
    float *t = R->m->w;
    R->m->w = R->fq;
    R->fq = t;
    R->fq_active = !R->fq_active;
}

static smelt_err *evaluate(run *R, int64_t step, distill_eval_info *out)
{
    double t0 = smelt_now();
    smelt_model *view = NULL;
    llm_engine *e = NULL;
    qat_swap(R);
    smelt_err *verr = tm_view_smelt(R->m, &view);
    qat_swap(R);
    if (verr) return verr;
    smelt_err *err = llm_engine_new(view, &e);
    *out = (distill_eval_info){.step = step, .n = R->n_val};
    for (int i = 0; i < R->n_val && !err; i++) {
        ppl_result pr;
        err = smelt_err_wrap(ppl_evaluate(e, R->val[i].ids, R->val[i].n, R->val_window, NULL, NULL, &pr), "%s", R->o->val[i]);
        snprintf(out->names[i], sizeof out->names[i], "%s", R->val[i].name);
        out->ppl[i] = err ? NAN : pr.ppl;
    }
    llm_engine_free(e);
    smelt_model_free(view);
    R->r->t_eval += smelt_now() - t0;
    if (!err && R->o->on_eval) R->o->on_eval(R->o->ctx, out);
    return err;
}

static json_t *make_fingerprint(const run *R)
{
    const distill_opts *o = R->o;
    const tm_config *c = &R->m->c;
    json_t *data = json_array(), *layers = json_array();
    for (int i = 0; i < o->n_data; i++) json_array_append_new(data, json_string(o->data[i]));
    for (int i = 0; i < R->n_layers; i++) json_array_append_new(layers, json_integer(R->layers[i]));
    json_t *student = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b}", "arch", c->arch == TM_GPT2 ? "gpt2" : "llama", "vocab", c->V, "hidden", c->C, "layers", c->L, "heads", c->nh, "kv_heads", c->nkv,
                                "head_dim", c->hd, "ffn", c->F, "tied", c->tied);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    return json_pack("{s:o, s:o, s:o, s:s, s:i, s:i, s:i, s:I, s:f, s:f, s:f, s:f, s:I, s:f, s:f, s:f, s:o, s:o}", "student", student, "kept_layers", layers, "data",
                     data, "seed", seed, "batch", o->batch, "seq", o->seq, "accum", o->accum, "steps", (json_int_t)o->steps, "lr", (double)o->opt.lr, "alpha",
                     (double)o->alpha, "temp", (double)o->temp, "weight_decay", (double)o->opt.weight_decay, "warmup", (json_int_t)o->opt.warmup, "clip",
                     (double)o->opt.clip, "min_lr_ratio", (double)o->opt.min_lr_ratio, "beta2", (double)o->opt.beta2, "init", o->init ? json_string(o->init) : json_null(), "qat",
                     o->qat.bits ? json_pack("{s:i, s:i, s:b}", "bits", o->qat.bits, "group", o->qat.group, "asym", o->qat.asym) : json_null());
}

static smelt_err *setup(run *R)
{
    const distill_opts *o = R->o;
    distill_result *r = R->r;
    int modes = (o->keep_layers != NULL) + (o->keep_every > 0) + (o->student_config != NULL);
    if (modes != 1) return SMELT_ERR(SMELT_E_INVALID, "give exactly one of --keep-layers, --keep-every and --student-config");
    if (o->steps < 0 || o->batch < 1 || o->seq < 2 || o->accum < 1 || !(o->temp > 0) || o->alpha < 0 || o->alpha > 1)
        return SMELT_ERR(SMELT_E_INVALID, "bad options: --steps >= 0, --batch >= 1, --seq >= 2, --accum >= 1, --temp > 0 and --alpha in [0, 1] expected");
    if (o->n_val > DISTILL_MAX_VAL) return SMELT_ERR(SMELT_E_INVALID, "%d validation files, at most %d", o->n_val, DISTILL_MAX_VAL);
    SMELT_TRY(smelt_load_model(o->teacher, false, &R->teacher));
    smelt_model *t = R->teacher;
    if (t->kind != SMELT_KIND_LLM) return SMELT_ERR(SMELT_E_INVALID, "%s: the teacher must be a language model (Hugging Face folder or .smelt)", o->teacher);
    if (!t->tokenizer_json) return SMELT_ERR(SMELT_E_INVALID, "%s: the teacher has no tokenizer.json", o->teacher);
    SMELT_TRY(smelt_err_wrap(smelt_tokenizer_load(t->tokenizer_json, strlen(t->tokenizer_json), "tokenizer.json", &R->tok), "%s", o->teacher));
    if (smelt_tokenizer_vocab_size(R->tok) > t->llm.vocab_size)
        return SMELT_ERR(SMELT_E_INVALID, "%s: tokenizer has %d tokens, more than the model's vocab_size %d", o->teacher, smelt_tokenizer_vocab_size(R->tok),
                         t->llm.vocab_size);
    if (o->keep_layers) SMELT_TRY(student_parse_layers(o->keep_layers, t->llm.n_layers, &R->layers, &R->n_layers));
    else if (o->keep_every) SMELT_TRY(student_every_layers(o->keep_every, t->llm.n_layers, &R->layers, &R->n_layers));
    if (R->layers) SMELT_TRY(student_from_layers(t, o->teacher, R->layers, R->n_layers, &R->m));
    else SMELT_TRY(student_from_config(t, o->teacher, o->student_config, o->seed, &R->m));
    if (o->init) {
        smelt_model *im = NULL;
        smelt_err *err = smelt_load_model(o->init, false, &im);
        if (!err) err = tm_load_from(R->m, im, NULL, o->init);
        smelt_model_free(im);
        if (err) return err;
    }
    const tm_config *c = &R->m->c;
    r->student_layers = c->L;
    r->params = (int64_t)0;
    for (int i = 0; i < R->m->n_tensors; i++) r->params += (int64_t)R->m->tensors[i].numel;
    r->teacher_params = smelt_model_param_count(t);
    if (o->seq > t->llm.max_pos || o->seq > c->max_pos)
        return SMELT_ERR(SMELT_E_INVALID, "--seq %d is longer than the model's context (%d)", o->seq, t->llm.max_pos < c->max_pos ? t->llm.max_pos : c->max_pos);
    int32_t eos = t->llm.eos_id >= 0 ? t->llm.eos_id : smelt_tokenizer_token_id(R->tok, "<|endoftext|>");
    if (eos < 0) return SMELT_ERR(SMELT_E_INVALID, "%s: no end-of-text token (config eos_token_id or '<|endoftext|>')", o->teacher);
    SMELT_TRY(dd_open(o->data, o->n_data, R->tok, eos, o->seq, o->seed, &R->data));
    R->val_window = c->max_pos < VAL_WINDOW ? c->max_pos : VAL_WINDOW;
    SMELT_TRY(load_val(R, eos));
    SMELT_TRY(smelt_err_wrap(llm_engine_new(t, &R->teng), "%s", o->teacher));
    SMELT_TRY(tm_acts_new(c, o->batch, o->seq, &R->acts));
    SMELT_TRY(adamw_init(&R->adam, R->m->n_params));
    size_t N = (size_t)o->batch * o->seq;
    R->ids = malloc(N * sizeof *R->ids);
    R->targets = malloc(N * sizeof *R->targets);
    R->tlogits = o->alpha > 0 ? malloc(N * (size_t)c->V * sizeof *R->tlogits) : NULL;
    R->tseqs = calloc((size_t)o->batch, sizeof *R->tseqs);
    if (!R->ids || !R->targets || (o->alpha > 0 && !R->tlogits) || !R->tseqs) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int b = 0; b < o->batch; b++) SMELT_TRY(llm_seq_new(R->teng, &R->tseqs[b]));
    if (o->qat.bits) {
        SMELT_TRY(qat_check(R->m, &o->qat));
        if (!(R->fq = aligned_alloc(64, R->m->n_params * sizeof(float)))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!(R->fingerprint = make_fingerprint(R))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (o->checkpoint_dir) {
        if (!smelt_is_dir(o->checkpoint_dir) && !o->resume && mkdir(o->checkpoint_dir, 0777) != 0)
            return SMELT_ERR(SMELT_E_IO, "%s: cannot create the checkpoint folder: %s", o->checkpoint_dir, strerror(errno));
        if (!(R->ckpt_path = smelt_path_join(o->checkpoint_dir, "checkpoint.bin"))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (o->resume) {
        if (!R->ckpt_path) return SMELT_ERR(SMELT_E_INVALID, "--resume needs --checkpoint-dir");
        if (!smelt_file_exists(R->ckpt_path)) return SMELT_ERR(SMELT_E_INVALID, "%s: no checkpoint to resume from", R->ckpt_path);
        dd_state ds;
        SMELT_TRY(ck_load(R->ckpt_path, R->m, &R->adam, &r->start_step, &r->final_loss, &ds, R->fingerprint));
        r->steps_done = r->start_step;
        if (r->start_step > o->steps) return SMELT_ERR(SMELT_E_INVALID, "%s: checkpoint is at step %lld, past --steps %lld", R->ckpt_path, (long long)r->start_step, (long long)o->steps);
        dd_set_state(R->data, &ds);
    }
    return NULL;
}

/* The teacher's logits for the batch in R->ids, [B*T, V]. */
static smelt_err *teacher_logits(run *R)
{
    const distill_opts *o = R->o;
    llm_batch_item items[o->batch];
    for (int b = 0; b < o->batch; b++) {
        llm_seq_truncate(R->tseqs[b], 0);
        items[b] = (llm_batch_item){R->tseqs[b], R->ids + (size_t)b * o->seq, o->seq, true};
    }
    return llm_forward(R->teng, items, o->batch, R->tlogits);
}

static smelt_err *save_checkpoint(run *R, int64_t step)
{
    dd_state ds = dd_get_state(R->data);
    return ck_save(R->ckpt_path, R->m, &R->adam, step, R->r->final_loss, &ds, R->fingerprint);
}

/* CPU seconds this process has used (all threads): with other work sharing the cores, tokens per
 * CPU second says what the code costs where wall-clock throughput says what the machine gave it. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static smelt_err *train(run *R)
{
    const distill_opts *o = R->o;
    distill_result *r = R->r;
    adamw_opts opt = o->opt;
    opt.total_steps = o->steps;
    int V = R->m->c.V;
    size_t N = (size_t)o->batch * o->seq;
    float scale = 1.0f / (float)(N * (size_t)o->accum);
    if (r->start_step == 0 && R->n_val) SMELT_TRY(evaluate(R, 0, &r->first_eval));
    r->last_eval = r->first_eval;
    int64_t last_eval_step = r->start_step == 0 && R->n_val ? 0 : -1;
    double t_train = 0;
    tm_timing tim = {0};
    for (int64_t step = r->start_step; step < o->steps; step++) {
        double t0 = smelt_now(), c0 = cpu_seconds();
        memset(R->m->g, 0, R->m->n_params * sizeof(float));
        tl_loss_sums sums = {0};
        for (int k = 0; k < o->accum; k++) {
            dd_next(R->data, o->batch, R->ids, R->targets);
            for (size_t i = 0; i < N; i++)
                if (R->ids[i] >= V || R->targets[i] >= V) return SMELT_ERR(SMELT_E_INVALID, "token id %d is outside the vocabulary of %d", R->ids[i], V);
            if (R->tlogits) {
                double tt = smelt_now();
                SMELT_TRY(teacher_logits(R));
                r->t_teacher += smelt_now() - tt;
            }
            qat_swap(R);
            tm_forward_backward(R->m, R->acts, R->ids, R->targets, R->tlogits, o->alpha, o->temp, scale, &sums, &tim);
            qat_swap(R);
        }
        double to = smelt_now();
        double norm = tm_grad_norm(R->m);
        float mul = opt.clip > 0 && norm > opt.clip ? (float)(opt.clip / norm) : 1.0f;
        float lr = adamw_lr(&opt, step);
        adamw_step(R->m, &R->adam, &opt, lr, mul);
        r->t_opt += smelt_now() - to;
        t_train += smelt_now() - t0;
        r->cpu_s += cpu_seconds() - c0;
        r->steps_done = step + 1;
        r->final_loss = tl_loss_value(&sums, o->alpha, o->temp, R->tlogits != NULL);
        int64_t done = step + 1 - r->start_step;
        r->tok_per_s = (double)done * (double)N * o->accum / t_train;
        if (o->on_step) {
            distill_step_info si = {step + 1, o->steps, r->final_loss, sums.n ? sums.ce / (double)sums.n : 0, sums.n ? sums.kl / (double)sums.n : 0, lr, norm,
                                    done * (int64_t)N * o->accum, r->tok_per_s, t_train / (double)done * (double)(o->steps - step - 1)};
            o->on_step(o->ctx, &si);
        }
        bool stop = o->stop && *o->stop;
        if (R->ckpt_path && ((o->checkpoint_every && (step + 1) % o->checkpoint_every == 0) || stop)) SMELT_TRY(save_checkpoint(R, step + 1));
        if (stop && step + 1 < o->steps) {
            r->interrupted = true;
            break;
        }
        if (R->n_val && o->eval_every && (step + 1) % o->eval_every == 0) {
            SMELT_TRY(evaluate(R, step + 1, &r->last_eval));
            last_eval_step = step + 1;
        }
    }
    r->t_linear = tim.t_linear, r->t_attn = tim.t_attn, r->t_loss = tim.t_loss, r->t_other = tim.t_other;
    if (!r->interrupted && R->n_val && last_eval_step != o->steps && o->steps > r->start_step) SMELT_TRY(evaluate(R, o->steps, &r->last_eval));
    return NULL;
}

smelt_err *distill_run(const distill_opts *o, distill_result *r)
{
    *r = (distill_result){0};
    double t0 = smelt_now();
    run R = {.o = o, .r = r};
    smelt_err *err = setup(&R);
    /* the pool splits every product; OpenBLAS's own threads would fight it for the cores */
    openblas_set_num_threads(1);
    if (!err) err = train(&R);
    if (!err && !r->interrupted) {
        json_t *meta = json_deep_copy(R.teacher->meta);
        json_t *layers = json_array();
        for (int i = 0; i < R.n_layers; i++) json_array_append_new(layers, json_integer(R.layers[i]));
        if (meta)
            json_object_set_new(meta, "distillation",
                                json_pack("{s:s, s:o, s:s?, s:I, s:i, s:i, s:f, s:f, s:f}", "teacher", o->teacher, "kept_layers", layers, "student_config",
                                          o->student_config, "steps", (json_int_t)o->steps, "batch", o->batch, "seq", o->seq, "lr", (double)o->opt.lr, "alpha",
                                          (double)o->alpha, "temp", (double)o->temp));
        else json_decref(layers);
        err = tm_to_smelt(R.m, R.teacher->tokenizer_json, meta, &r->student);
        json_decref(meta);
        if (!err && o->qat.bits) {
            /* the same round-to-nearest rule the training passes used, now stored as integers */
            quant_recipe qr = {.scheme = o->qat, .method = "rtn", .calib_window = 256, .damp = 0.01};
            quant_report *rep = NULL;
            int n_rep = 0;
            err = quantize_llm(r->student, &qr, NULL, NULL, &rep, &n_rep);
            quant_report_free(rep, n_rep);
        }
    }
    r->t_total = smelt_now() - t0;
    for (int b = 0; R.tseqs && b < o->batch; b++) llm_seq_free(R.tseqs[b]);
    free(R.tseqs);
    llm_engine_free(R.teng);
    for (int i = 0; i < R.n_val; i++) free(R.val[i].ids);
    free(R.ids);
    free(R.targets);
    free(R.tlogits);
    free(R.fq);
    free(R.ckpt_path);
    free(R.layers);
    json_decref(R.fingerprint);
    dd_free(R.data);
    adamw_free(&R.adam);
    tm_acts_free(R.acts);
    tm_free(R.m);
    smelt_tokenizer_free(R.tok);
    smelt_model_free(R.teacher);
    return err;
}
