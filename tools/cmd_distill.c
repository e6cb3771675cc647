/* smelt distill: train a smaller student from a teacher on domain text (knowledge distillation). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "distill/train.h"
#include "formats/artifact.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "distill",
    "Distill a teacher language model into a smaller student (.smelt).",
    "smelt distill --teacher T (--keep-layers 0,2,4 | --keep-every N | --student-config FILE)\n"
    "                    --data FILE[:WEIGHT]... --steps N -o OUT.smelt [--seed S] [--batch B] [--seq L]\n"
    "                    [--lr LR] [--alpha A] [--temp T] [--eval-every K] [--checkpoint-dir D] [--resume] [--json]",
    "The teacher is a Llama-family or GPT-2 model. The student is the teacher's layers --keep-layers\n"
    "(or every N-th from 0), with its embedding, final norm and head (GPT-2: and position table), or a\n"
    "new Llama or GPT-2 config.json (--student-config; vocabulary shared, token embedding copied when\n"
    "the width agrees, final norm too when the architecture agrees, layers drawn from --seed). Each\n"
    "step trains on --batch windows of --seq tokens (times --accum) drawn from the --data files by\n"
    "WEIGHT (default 1) in a shuffled order fixed by --seed; the loss is (1 - alpha) cross-entropy +\n"
    "alpha T^2 KL(teacher || student) on logits softened by --temp T, the teacher's logits computed on\n"
    "the fly. AdamW (--weight-decay, none on norms and biases), linear warm-up (--warmup steps) then\n"
    "cosine decay to --min-lr-ratio of --lr, global gradient-norm clipping (--clip). Validation\n"
    "perplexity (protocol of data/README.md, first --val-windows windows of 256 tokens, or of the\n"
    "student's context when shorter) on each --val file (by default each DOMAIN.val.txt beside a\n"
    "DOMAIN.train.txt) before training, every --eval-every steps and at the end. Every step and evaluation is appended to a JSON-lines log (--metrics, default OUT\n"
    "without .smelt + .metrics.jsonl). With --checkpoint-dir a checkpoint is written atomically every\n"
    "--checkpoint-every steps and on SIGINT/SIGTERM (exit 130); --resume continues from it with the\n"
    "same options, reaching what an uninterrupted run reaches. --steps 0 writes the initialised\n"
    "student. Deterministic for a seed and thread count (SMELT_THREADS). --qat w4 (or w8) makes it\n"
    "quantization-aware: the passes run through the round-to-nearest quantized projections (groups of\n"
    "--qat-group, --qat-asym as in `smelt quant`), the float master weights take the gradient straight\n"
    "through, and the artifact is written quantized.\n"
    "--json prints {\"output\", \"steps\", \"final_loss\", \"tokens_per_s\",\n"
    "\"params\", \"eval\": {\"first\": {...}, \"last\": {...}}, \"time_s\": {...}}.",
};

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct {
    const char *metrics_path;
    bool append;
    FILE *metrics;
    bool tty;
} tool_ctx;

static void log_line(tool_ctx *t, json_t *j)
{
    if (!t->metrics && t->metrics_path) {
        t->metrics = fopen(t->metrics_path, t->append ? "a" : "w");
        if (!t->metrics) {
            fprintf(stderr, "smelt distill: %s: cannot open the metrics log\n", t->metrics_path);
            t->metrics_path = NULL;
        }
    }
    if (t->metrics) {
        json_dumpf(j, t->metrics, JSON_COMPACT | JSON_REAL_PRECISION(9));
        fputc('\n', t->metrics);
        fflush(t->metrics);
    }
    json_decref(j);
}

static void fmt_time(double s, char *buf, size_t cap)
{
    if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

static void on_step(void *ctx, const distill_step_info *s)
{
    tool_ctx *t = ctx;
    log_line(t, json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:f}", "step", (json_int_t)s->step, "loss", s->loss, "ce", s->ce, "kl", s->kl, "lr", s->lr,
                          "grad_norm", s->grad_norm, "tokens", (json_int_t)s->tokens, "tok_per_s", s->tok_per_s));
    if (t->tty) {
        char eta[32];
        fmt_time(s->eta_s, eta, sizeof eta);
        fprintf(stderr, "\rdistill: step %lld/%lld  loss %.4f  %.0f tok/s  ETA %s   ", (long long)s->step, (long long)s->steps, s->loss, s->tok_per_s, eta);
    }
}

static json_t *eval_json(const distill_eval_info *e)
{
    json_t *o = json_object();
    for (int i = 0; i < e->n; i++) json_object_set_new(o, e->names[i], json_real(e->ppl[i]));
    return o;
}

static void on_eval(void *ctx, const distill_eval_info *e)
{
    tool_ctx *t = ctx;
    log_line(t, json_pack("{s:I, s:o}", "step", (json_int_t)e->step, "val_ppl", eval_json(e)));
    if (t->tty) {
        fprintf(stderr, "\rdistill: step %lld val ppl", (long long)e->step);
        for (int i = 0; i < e->n; i++) fprintf(stderr, " %s %.2f", e->names[i], e->ppl[i]);
        fprintf(stderr, "%30s\n", "");
    }
}

/* DOMAIN.val.txt beside each DOMAIN.train.txt[:W] that has one (strings owned by vals). */
static void default_vals(const cli_strs *data, cli_strs *vals, char **owned)
{
    for (int i = 0; i < data->n && vals->n < 16; i++) {
        char *p = strdup(data->v[i]), *colon = p ? strrchr(p, ':') : NULL;
        if (!p) return;
        if (colon && !strchr(colon, '/')) *colon = 0;
        size_t n = strlen(p), k = strlen(".train.txt");
        if (n > k && strcmp(p + n - k, ".train.txt") == 0) {
            char *v = malloc(n + 8);
            if (!v) {
                free(p);
                break;
            }
            snprintf(v, n + 8, "%.*s.val.txt", (int)(n - k), p);
            if (smelt_file_exists(v)) owned[vals->n] = v, vals->v[vals->n++] = v;
            else free(v);
        }
        free(p);
    }
}

CMD(distill)
{
    const char *qat = NULL, *init = NULL;
    long qat_group = 128;
    bool qat_asym = false;
    const char *teacher = NULL, *keep = NULL, *student_config = NULL, *out = NULL, *ckpt = NULL, *metrics = NULL;
    long keep_every = 0, steps = -1, seed = 0, batch = 16, seq = 256, accum = 1, eval_every = 0, ckpt_every = 0, warmup = -1, val_windows = 200;
    double lr = 5e-4, alpha = 0.5, temp = 2.0, wd = 0.01, clip = 1.0, min_lr = 0.1;
    cli_strs data = {0}, val = {0};
    bool resume = false, json = false;
    const cli_opt opts[] = {
        {"teacher", 0, OPT_STR, &teacher, "T", "teacher: Hugging Face folder or .smelt (required)"},
        {"keep-layers", 0, OPT_STR, &keep, "I,J,..", "student = these teacher layers"},
        {"keep-every", 0, OPT_INT, &keep_every, "N", "student = teacher layers 0, N, 2N, ..."},
        {"student-config", 0, OPT_STR, &student_config, "FILE", "student = a new Llama or GPT-2 config.json"},
        {"data", 0, OPT_STRS, &data, "FILE[:WEIGHT]", "training text (repeatable; required)"},
        {"val", 0, OPT_STRS, &val, "FILE", "validation text (repeatable; default DOMAIN.val.txt beside DOMAIN.train.txt)"},
        {"val-windows", 0, OPT_INT, &val_windows, "N", "windows of 256 scored a val file (default 200; 0: all)"},
        {"steps", 0, OPT_INT, &steps, "N", "optimizer steps (required; 0 writes the initialised student)"},
        {"output", 'o', OPT_STR, &out, "OUT.smelt", "artifact to write (required)"},
        {"seed", 0, OPT_INT, &seed, "S", "data order and initialisation (default 0)"},
        {"batch", 0, OPT_INT, &batch, "B", "sequences a micro-batch (default 16)"},
        {"seq", 0, OPT_INT, &seq, "L", "tokens a sequence (default 256)"},
        {"accum", 0, OPT_INT, &accum, "K", "micro-batches a step (gradient accumulation; default 1)"},
        {"lr", 0, OPT_DOUBLE, &lr, "LR", "peak learning rate (default 5e-4)"},
        {"warmup", 0, OPT_INT, &warmup, "N", "warm-up steps (default steps/20)"},
        {"min-lr-ratio", 0, OPT_DOUBLE, &min_lr, "R", "final learning rate / peak (default 0.1)"},
        {"weight-decay", 0, OPT_DOUBLE, &wd, "W", "AdamW decoupled weight decay (default 0.01)"},
        {"clip", 0, OPT_DOUBLE, &clip, "C", "max global gradient norm (default 1; 0: off)"},
        {"alpha", 0, OPT_DOUBLE, &alpha, "A", "weight of the KD term (default 0.5; 0: cross-entropy only)"},
        {"temp", 0, OPT_DOUBLE, &temp, "T", "distillation temperature (default 2)"},
        {"init", 0, OPT_STR, &init, "MODEL", "start from these weights (same shapes; e.g. a GPTQ artifact for --qat)"},
        {"qat", 0, OPT_STR, &qat, "w4|w8", "quantization-aware: train through RTN-quantized projections, write them quantized"},
        {"qat-group", 0, OPT_INT, &qat_group, "N", "--qat w4: input features a scale (default 128)"},
        {"qat-asym", 0, OPT_FLAG, &qat_asym, NULL, "--qat w4: a zero point a group"},
        {"eval-every", 0, OPT_INT, &eval_every, "K", "validation perplexity every K steps (default: start and end)"},
        {"checkpoint-dir", 0, OPT_STR, &ckpt, "D", "folder for checkpoint.bin"},
        {"checkpoint-every", 0, OPT_INT, &ckpt_every, "K", "checkpoint every K steps (default: --eval-every, else 50)"},
        {"resume", 0, OPT_FLAG, &resume, NULL, "continue from D/checkpoint.bin"},
        {"metrics", 0, OPT_STR, &metrics, "FILE", "JSON-lines log of steps and evaluations"},
        {"json", 0, OPT_FLAG, &json, NULL, "print the summary as JSON"},
        {0},
    };
    int n_pos, rc = cli_parse(&info, opts, argc, argv, NULL, 0, 0, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    const char *missing = !teacher ? "--teacher T" : !data.n ? "--data FILE" : steps < 0 ? "--steps N" : !out ? "-o OUT.smelt" : NULL;
    if (missing) {
        fprintf(stderr, "smelt distill: missing %s\nusage: %s\n", missing, info.usage);
        return 2;
    }
    if ((keep != NULL) + (keep_every != 0) + (student_config != NULL) != 1) {
        fprintf(stderr, "smelt distill: give exactly one of --keep-layers, --keep-every, --student-config\nusage: %s\n", info.usage);
        return 2;
    }
    if (batch < 1 || batch > 4096 || seq < 2 || seq > 1 << 20 || accum < 1 || accum > 4096 || val_windows < 0 || eval_every < 0 || ckpt_every < 0 || steps > 1L << 40 ||
        !(lr > 0) || !(temp > 0) || !(alpha >= 0 && alpha <= 1) || !(clip >= 0) || !(wd >= 0) || !(min_lr >= 0 && min_lr <= 1)) {
        fprintf(stderr, "smelt distill: an option is out of range (see --help)\n");
        return 2;
    }
    quant_scheme qs = {0, (int)qat_group, qat_asym};
    if (qat && strcmp(qat, "w4") == 0) qs.bits = 4;
    else if (qat && strcmp(qat, "w8") == 0) qs.bits = 8;
    else if (qat) {
        fprintf(stderr, "smelt distill: --qat '%s': expected w4 or w8\n", qat);
        return 2;
    }
    char *owned_vals[16] = {0};
    if (!val.n) default_vals(&data, &val, owned_vals);
    char *metrics_default = NULL;
    if (!metrics) {
        size_t n = strlen(out);
        metrics_default = malloc(n + 16);
        if (!metrics_default) return cli_fail("distill", SMELT_ERR(SMELT_E_NOMEM, "out of memory"));
        size_t base = n > 6 && strcmp(out + n - 6, ".smelt") == 0 ? n - 6 : n;
        snprintf(metrics_default, n + 16, "%.*s.metrics.jsonl", (int)base, out);
        metrics = metrics_default;
    }
    tool_ctx tc = {metrics, resume, NULL, smelt_progress_enabled()};
    distill_opts o = {
        .teacher = teacher, .keep_layers = keep, .keep_every = (int)keep_every, .student_config = student_config, .init = init, .data = data.v, .n_data = data.n,
        .val = val.v, .n_val = val.n, .val_windows = (int)val_windows, .steps = steps, .batch = (int)batch, .seq = (int)seq, .accum = (int)accum,
        .seed = (uint64_t)seed, .alpha = (float)alpha, .temp = (float)temp,
        .opt = {.lr = (float)lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = (float)wd, .min_lr_ratio = (float)min_lr,
                .warmup = warmup >= 0 ? warmup : steps / 20, .clip = (float)clip},
        .eval_every = (int)eval_every, .checkpoint_every = (int)(ckpt_every ? ckpt_every : eval_every ? eval_every : 50), .checkpoint_dir = ckpt,
        .resume = resume, .qat = qs, .stop = &stop_flag, .on_step = on_step, .on_eval = on_eval, .ctx = &tc,
    };
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    distill_result r;
    smelt_err *err = distill_run(&o, &r);
    if (tc.tty && r.steps_done) fputc('\n', stderr);
    if (!err && r.student) {
        artifact_write_opts wo = {"any", cli_command_line, SMELT_VERSION};
        err = artifact_write(out, r.student, &wo);
    }
    if (tc.metrics) fclose(tc.metrics);
    smelt_model_free(r.student);
    free(metrics_default);
    for (int i = 0; i < 16; i++) free(owned_vals[i]);
    if (err) return cli_fail("distill", err);
    if (r.interrupted) {
        fprintf(stderr, "smelt distill: stopped at step %lld; checkpoint written to %s (continue with --resume)\n", (long long)r.steps_done, ckpt ? ckpt : "(none)");
        return 130;
    }
    double busy = r.t_teacher + r.t_linear + r.t_attn + r.t_loss + r.t_other + r.t_opt;
    if (json) {
        json_t *t = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "teacher", r.t_teacher, "linear_sgemm", r.t_linear, "attention", r.t_attn, "loss",
                              r.t_loss, "other", r.t_other, "optimizer", r.t_opt, "eval", r.t_eval, "total", r.t_total);
        json_object_set_new(t, "train_cpu", json_real(r.cpu_s));
        json_t *j = json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:i, s:{s:o, s:o}, s:o}", "output", out, "steps", (json_int_t)r.steps_done, "start_step",
                              (json_int_t)r.start_step, "final_loss", r.final_loss, "tokens_per_s", r.tok_per_s, "params", (json_int_t)r.params,
                              "teacher_params", (json_int_t)r.teacher_params, "layers", r.student_layers, "eval", "first", eval_json(&r.first_eval), "last",
                              eval_json(&r.last_eval), "time_s", t);
        json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(j);
    } else {
        printf("%s: %d-layer student, %lld parameters (teacher %lld), %lld steps, final loss %.4f, %.0f tokens/s (%.0f a CPU second)\n", out,
               r.student_layers, (long long)r.params, (long long)r.teacher_params, (long long)r.steps_done, r.final_loss, r.tok_per_s,
               r.cpu_s > 0 ? (double)(r.steps_done - r.start_step) * o.batch * o.seq * o.accum / r.cpu_s : 0.0);
        if (busy > 0)
            printf("time: teacher %.1f%%, student projections (sgemm) %.1f%%, attention %.1f%%, loss %.1f%%, other %.1f%%, optimizer %.1f%%\n",
                   100 * r.t_teacher / busy, 100 * r.t_linear / busy, 100 * r.t_attn / busy, 100 * r.t_loss / busy, 100 * r.t_other / busy, 100 * r.t_opt / busy);
        for (int i = 0; i < r.last_eval.n; i++)
            printf("val ppl %-8s %9.3f -> %9.3f\n", r.last_eval.names[i], r.first_eval.n ? r.first_eval.ppl[i] : NAN, r.last_eval.ppl[i]);
    }
    return cli_finish_stdout("distill");
}
