/* Hardware profile files and cost arithmetic (formulas in cost.h). */
#define _POSIX_C_SOURCE 200809L
#include "evals/cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evals/jfield.h"

typedef enum { TP_MEASURED, TP_ROOFLINE, TP_FIXED } tp_source;

typedef struct {
    double utilization, batching_efficiency, load_factor;
} scenario;

static const char *const SCENARIOS[] = {"best", "expected", "burst"};

struct hardware_profile {
    char *path, *name, *note;
    double usd_per_hour, memory_gb, power_w;
    long accelerators, min_instances;
    tp_source tp;
    double peak_tflops, bandwidth_gbs, efficiency; /* roofline */
    double prefill_tok_s, decode_tok_s;            /* fixed */
    double storage_usd, network_usd_per_gb, bytes_per_token, orchestration_usd, engineering_usd;
    scenario sc[3];
};

static smelt_err *parse(hardware_profile *h, const json_t *root)
{
    static const char *const keys[] = {"name", "description", "usd_per_hour", "memory_gb", "power_w", "accelerators", "cores", "throughput", "min_instances",
                                       "monthly", "scenarios", NULL};
    static const char *const tkeys[] = {"source", "note", "peak_tflops", "memory_bandwidth_gbs", "efficiency", "prefill_tok_s", "decode_tok_s", NULL};
    static const char *const mkeys[] = {"storage_usd", "network_usd_per_gb", "bytes_per_token", "orchestration_usd", "engineering_usd", NULL};
    static const char *const skeys[] = {"best", "expected", "burst", NULL};
    static const char *const sckeys[] = {"utilization", "batching_efficiency", "load_factor", NULL};
    const char *f = h->path, *name, *src, *note = "";
    json_t *tp, *mon, *scs;
    SMELT_TRY(jf_keys(f, "", root, keys));
    SMELT_TRY(jf_string(f, "", root, "name", true, &name));
    if (!(h->name = strdup(name))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    SMELT_TRY(jf_number(f, "", root, "usd_per_hour", true, 0, 1e6, &h->usd_per_hour));
    SMELT_TRY(jf_number(f, "", root, "memory_gb", true, 1e-3, 1e7, &h->memory_gb));
    SMELT_TRY(jf_number(f, "", root, "power_w", true, 0, 1e7, &h->power_w));
    h->accelerators = 1;
    long cores = 0;
    SMELT_TRY(jf_int(f, "", root, "accelerators", false, 1, 1 << 20, &h->accelerators));
    SMELT_TRY(jf_int(f, "", root, "cores", false, 1, 1 << 24, &cores));
    h->min_instances = 1;
    SMELT_TRY(jf_int(f, "", root, "min_instances", false, 0, 1 << 20, &h->min_instances));
    SMELT_TRY(jf_object(f, "", root, "throughput", true, &tp));
    SMELT_TRY(jf_keys(f, "throughput", tp, tkeys));
    SMELT_TRY(jf_string(f, "throughput", tp, "source", true, &src));
    SMELT_TRY(jf_string(f, "throughput", tp, "note", false, &note));
    if (!(h->note = strdup(note))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (strcmp(src, "measured") == 0) {
        h->tp = TP_MEASURED;
    } else if (strcmp(src, "roofline") == 0) {
        h->tp = TP_ROOFLINE;
        SMELT_TRY(jf_number(f, "throughput", tp, "peak_tflops", true, 1e-6, 1e9, &h->peak_tflops));
        SMELT_TRY(jf_number(f, "throughput", tp, "memory_bandwidth_gbs", true, 1e-6, 1e9, &h->bandwidth_gbs));
        SMELT_TRY(jf_number(f, "throughput", tp, "efficiency", true, 1e-6, 1, &h->efficiency));
    } else if (strcmp(src, "fixed") == 0) {
        h->tp = TP_FIXED;
        SMELT_TRY(jf_number(f, "throughput", tp, "prefill_tok_s", true, 1e-9, 1e15, &h->prefill_tok_s));
        SMELT_TRY(jf_number(f, "throughput", tp, "decode_tok_s", true, 1e-9, 1e15, &h->decode_tok_s));
    } else {
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'throughput.source': expected \"measured\", \"roofline\" or \"fixed\", found \"%s\"", f, src);
    }
    SMELT_TRY(jf_object(f, "", root, "monthly", true, &mon));
    SMELT_TRY(jf_keys(f, "monthly", mon, mkeys));
    SMELT_TRY(jf_number(f, "monthly", mon, "storage_usd", true, 0, 1e12, &h->storage_usd));
    SMELT_TRY(jf_number(f, "monthly", mon, "network_usd_per_gb", true, 0, 1e6, &h->network_usd_per_gb));
    h->bytes_per_token = 4;
    SMELT_TRY(jf_number(f, "monthly", mon, "bytes_per_token", false, 0, 1e6, &h->bytes_per_token));
    SMELT_TRY(jf_number(f, "monthly", mon, "orchestration_usd", true, 0, 1e12, &h->orchestration_usd));
    SMELT_TRY(jf_number(f, "monthly", mon, "engineering_usd", true, 0, 1e12, &h->engineering_usd));
    SMELT_TRY(jf_object(f, "", root, "scenarios", true, &scs));
    SMELT_TRY(jf_keys(f, "scenarios", scs, skeys));
    for (int i = 0; i < 3; i++) {
        json_t *s;
        char parent[64];
        snprintf(parent, sizeof parent, "scenarios.%s", SCENARIOS[i]);
        SMELT_TRY(jf_object(f, "scenarios", scs, SCENARIOS[i], true, &s));
        SMELT_TRY(jf_keys(f, parent, s, sckeys));
        SMELT_TRY(jf_number(f, parent, s, "utilization", true, 1e-6, 1, &h->sc[i].utilization));
        SMELT_TRY(jf_number(f, parent, s, "batching_efficiency", true, 1e-6, 1, &h->sc[i].batching_efficiency));
        SMELT_TRY(jf_number(f, parent, s, "load_factor", true, 1e-6, 1e6, &h->sc[i].load_factor));
    }
    return NULL;
}

smelt_err *hardware_load(const char *path, hardware_profile **out)
{
    *out = NULL;
    hardware_profile *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    json_t *root;
    smelt_err *err = jf_load(path, &root);
    if (!err) err = parse(h, root);
    json_decref(root);
    if (err) {
        hardware_free(h);
        return err;
    }
    *out = h;
    return NULL;
}

void hardware_free(hardware_profile *h)
{
    if (!h) return;
    free(h->path);
    free(h->name);
    free(h->note);
    free(h);
}

static double num(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    return json_number_value(v);
}

/* Multiply-adds a token of the decoder's linear layers (attention projections, MLP, output head). */
static double params_of(const json_t *cfg)
{
    double d = num(cfg, "hidden", NULL), l = num(cfg, "layers", NULL), h = num(cfg, "heads", NULL), kv = num(cfg, "kv_heads", NULL);
    double ffn = num(cfg, "ffn", NULL), vocab = num(cfg, "vocab_size", NULL);
    double hd = h > 0 ? d / h : 0;
    return l * (2 * d * d + 2 * d * kv * hd + 3 * d * ffn) + vocab * d;
}

static json_t *scenario_json(const hardware_profile *h, const workload_profile *w, const scenario *s, double pre, double dec)
{
    double ep = pre * s->utilization * s->batching_efficiency, ed = dec * s->utilization * s->batching_efficiency;
    double in_1m = h->usd_per_hour / (ep * 3600) * 1e6, out_1m = h->usd_per_hour / (ed * 3600) * 1e6;
    double p = w->prompt.mean, o = w->output.mean;
    double per_req = p * in_1m / 1e6 + o * out_1m / 1e6;
    double reqs = w->monthly_requests * s->load_factor;
    double busy_h = reqs * (p / ep + o / ed) / 3600;
    double billed_h = fmax(busy_h, (double)h->min_instances * 730);
    double gb = reqs * (p + o) * h->bytes_per_token / 1e9;
    double accel = billed_h * h->usd_per_hour, net = gb * h->network_usd_per_gb;
    double monthly = accel + h->storage_usd + net + h->orchestration_usd + h->engineering_usd;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:f, s:f}", "utilization", s->utilization,
                     "batching_efficiency", s->batching_efficiency, "load_factor", s->load_factor, "effective_prefill_tok_s", ep, "effective_decode_tok_s", ed,
                     "usd_per_1m_input_tokens", in_1m, "usd_per_1m_output_tokens", out_1m, "usd_per_request", per_req, "monthly_requests", reqs,
                     "busy_accelerator_hours", busy_h, "billed_accelerator_hours", billed_h, "instances", ceil(billed_h / 730), "monthly_usd", monthly,
                     "monthly_breakdown_usd", "accelerator", accel, "storage", h->storage_usd, "network", net, "orchestration", h->orchestration_usd, "engineering",
                     h->engineering_usd, "usd_per_1k_requests", monthly / reqs * 1000, "kwh_per_1m_output_tokens",
                     h->power_w * (double)h->accelerators / 1000 * (1e6 / ed) / 3600);
}

smelt_err *cost_run(const hardware_profile *h, const workload_profile *w, const json_t *replay, const json_t *artifact, json_t **out)
{
    *out = NULL;
    double pre = 0, dec = 0;
    const char *how = "";
    char buf[256];
    double weights = num(artifact, "weight_bytes", NULL);
    if (h->tp == TP_MEASURED) {
        pre = num(replay, "throughput", "prefill_tok_s");
        dec = num(replay, "throughput", "decode_tok_s");
        how = "measured by the workload replay on this machine";
    } else if (h->tp == TP_FIXED) {
        pre = h->prefill_tok_s;
        dec = h->decode_tok_s;
        how = "fixed in the hardware profile";
    } else {
        double flops = 2 * params_of(json_object_get(artifact, "config")), peak = h->peak_tflops * 1e12 * h->efficiency;
        double bw = h->bandwidth_gbs * 1e9 * h->efficiency, batch = (double)w->max_batch;
        pre = flops > 0 ? peak / flops : 0;
        double step = fmax(weights / bw, batch * flops / peak);
        dec = step > 0 ? batch / step : 0;
        snprintf(buf, sizeof buf, "roofline: %.3g TFLOP/s and %.4g GB/s at %.0f%% efficiency, %.4g MFLOP a token, %.4g MB of weights a step, decode batch %.0f",
                 h->peak_tflops, h->bandwidth_gbs, h->efficiency * 100, flops / 1e6, weights / 1e6, batch);
        how = buf;
    }
    if (!(pre > 0) || !(dec > 0))
        return SMELT_ERR(SMELT_E_INVALID, "%s: no throughput to price (prefill %g, decode %g tokens/s): expected a replay with prefill and decode steps", h->path, pre,
                         dec);
    double kv_session = num(replay, "memory", "kv_bytes_per_session");
    double mem = h->memory_gb * 1e9 * (double)h->accelerators;
    json_t *scs = json_object();
    for (int i = 0; i < 3; i++) json_object_set_new(scs, SCENARIOS[i], scenario_json(h, w, &h->sc[i], pre, dec));
    json_t *exp = json_object_get(scs, "expected");
    *out = json_pack("{s:{s:s, s:s, s:f, s:f, s:f, s:I}, s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:o}", "hardware", "path", h->path, "name",
                     h->name, "usd_per_hour", h->usd_per_hour, "memory_gb", h->memory_gb, "power_w", h->power_w, "accelerators", (json_int_t)h->accelerators,
                     "throughput_source", how, "throughput_note", h->note, "prefill_tok_s", pre, "decode_tok_s", dec, "nominal_prompt_tokens", w->prompt.mean,
                     "nominal_output_tokens", w->output.mean, "usd_per_1m_input_tokens", num(exp, "usd_per_1m_input_tokens", NULL), "usd_per_1m_output_tokens",
                     num(exp, "usd_per_1m_output_tokens", NULL), "usd_per_request", num(exp, "usd_per_request", NULL), "usd_per_1k_requests",
                     num(exp, "usd_per_1k_requests", NULL), "sessions_in_memory",
                     (json_int_t)(kv_session > 0 && mem > weights ? floor((mem - weights) / kv_session) : 0), "scenarios", scs);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}
