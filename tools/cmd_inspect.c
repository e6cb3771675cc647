/* smelt inspect: what a model is — architecture, hyper-parameters, parameter count, bytes per dtype,
 * the tensor table, and for graphs the opsets, inputs/outputs and an op histogram. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "formats/load.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "inspect",
    "Show a model's architecture, hyper-parameters, parameter count, bytes per dtype and tensors.",
    "smelt inspect PATH [--json]",
    "PATH is a Hugging Face model folder, a .safetensors file, an .onnx file or a .smelt artifact.\n"
    "--json prints one object with at least 'params' (integer) and 'tensors' (array of\n"
    "{name, dtype, shape, bytes[, quant]}), plus 'kind', 'arch', 'config', 'bytes_by_dtype',\n"
    "and for graphs 'opsets', 'ops' (op -> count), 'inputs' and 'outputs'.",
};

static const char *source_name(smelt_source_kind k)
{
    switch (k) {
    case SMELT_SRC_HF_DIR: return "huggingface";
    case SMELT_SRC_SAFETENSORS: return "safetensors";
    case SMELT_SRC_ONNX: return "onnx";
    case SMELT_SRC_ARTIFACT: return "smelt";
    }
    return "?";
}

static json_t *quant_json(const smelt_quant *q)
{
    json_t *o = json_pack("{s:s, s:i, s:i, s:b, s:s}", "kind", q->kind == SMELT_QUANT_GROUP ? "group" : "per_channel", "bits", q->bits, "axis", q->axis,
                          "symmetric", q->symmetric, "scale", q->scale ? q->scale : "");
    if (q->kind == SMELT_QUANT_GROUP) json_object_set_new(o, "group_size", json_integer(q->group_size));
    if (q->zero) json_object_set_new(o, "zero", json_string(q->zero));
    return o;
}

static json_t *shape_json(int ndim, const int64_t *shape)
{
    json_t *a = json_array();
    for (int i = 0; i < ndim; i++) json_array_append_new(a, json_integer(shape[i]));
    return a;
}

static json_t *value_json(const smelt_value *v)
{
    json_t *dims = json_array();
    for (int i = 0; i < v->ndim; i++)
        json_array_append_new(dims, v->dims[i] >= 0 ? json_integer(v->dims[i]) : json_string(v->dim_names[i] ? v->dim_names[i] : "?"));
    return json_pack("{s:s, s:s, s:o}", "name", v->name, "dtype", smelt_dtype_name(v->dtype), "shape", dims);
}

static json_t *config_json(const smelt_llm_config *c)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:b, s:b, s:b, s:s, s:s, s:s, s:i, s:i}", "vocab_size", c->vocab_size,
                     "hidden", c->hidden, "layers", c->n_layers, "heads", c->n_heads, "kv_heads", c->n_kv_heads, "head_dim", c->head_dim, "ffn",
                     c->ffn, "max_positions", c->max_pos, "rope_theta", c->rope_theta, "norm_eps", c->norm_eps, "tied_embeddings",
                     c->tied_embeddings, "qkv_bias", c->attn_qkv_bias, "out_bias", c->attn_out_bias, "mlp_bias", c->mlp_bias, "activation", c->act,
                     "norm", c->norm, "positions", c->pos, "bos_id", c->bos_id, "eos_id", c->eos_id);
}

static json_t *summary_json(const char *path, smelt_source_kind src, const smelt_model *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "path", path, "source", source_name(src), "kind", m->kind == SMELT_KIND_LLM ? "llm" : "graph",
                          "arch", m->arch, "params", (json_int_t)smelt_model_param_count(m));
    if (m->kind == SMELT_KIND_LLM) json_object_set_new(o, "config", config_json(&m->llm));
    json_t *bytes = json_object(), *tensors = json_array();
    for (int i = 0; i < m->n_tensors; i++) {
        const smelt_tensor *t = &m->tensors[i];
        const char *dn = smelt_dtype_name(t->dtype);
        json_t *b = json_object_get(bytes, dn);
        json_object_set_new(bytes, dn, json_integer((b ? json_integer_value(b) : 0) + (json_int_t)t->nbytes));
        json_t *e = json_pack("{s:s, s:s, s:o, s:I}", "name", t->name, "dtype", dn, "shape", shape_json(t->ndim, t->shape), "bytes", (json_int_t)t->nbytes);
        if (t->quant.kind != SMELT_QUANT_NONE) json_object_set_new(e, "quant", quant_json(&t->quant));
        json_array_append_new(tensors, e);
    }
    json_object_set_new(o, "bytes_by_dtype", bytes);
    json_object_set_new(o, "tensors", tensors);
    /* quantized weights: how many, and their bits per weight with scales and zero points counted */
    int64_t qn = 0, qparams = 0, qbytes = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const smelt_tensor *t = &m->tensors[i];
        if (t->quant.kind == SMELT_QUANT_NONE) continue;
        const smelt_tensor *sc = t->quant.scale ? smelt_model_find(m, t->quant.scale) : NULL, *z = t->quant.zero ? smelt_model_find(m, t->quant.zero) : NULL;
        qn++;
        qparams += smelt_shape_numel(t->ndim, t->shape);
        qbytes += (int64_t)t->nbytes + (sc ? (int64_t)sc->nbytes : 0) + (z ? (int64_t)z->nbytes : 0);
    }
    if (qn) {
        json_t *recipe = json_object_get(m->meta, "quantization");
        json_t *q = json_pack("{s:I, s:I, s:I, s:f}", "weights", (json_int_t)qn, "params", (json_int_t)qparams, "bytes", (json_int_t)qbytes, "bits_per_weight",
                              8.0 * (double)qbytes / (double)qparams);
        if (recipe) json_object_set(q, "recipe", recipe);
        json_object_set_new(o, "quantization", q);
    }
    json_t *ops = json_object(), *opsets = json_array(), *ins = json_array(), *outs = json_array();
    for (int i = 0; i < m->n_nodes; i++) {
        json_t *c = json_object_get(ops, m->nodes[i].op);
        json_object_set_new(ops, m->nodes[i].op, json_integer((c ? json_integer_value(c) : 0) + 1));
    }
    for (int i = 0; i < m->n_opsets; i++)
        json_array_append_new(opsets, json_pack("{s:s, s:I}", "domain", m->opsets[i].domain, "version", (json_int_t)m->opsets[i].version));
    for (int i = 0; i < m->n_inputs; i++) json_array_append_new(ins, value_json(&m->inputs[i]));
    for (int i = 0; i < m->n_outputs; i++) json_array_append_new(outs, value_json(&m->outputs[i]));
    json_object_set_new(o, "nodes", json_integer(m->n_nodes));
    json_object_set_new(o, "ops", ops);
    json_object_set_new(o, "opsets", opsets);
    json_object_set_new(o, "inputs", ins);
    json_object_set_new(o, "outputs", outs);
    return o;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(int64_t v, char *buf, size_t cap)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i > 0 && tmp[i - 1] != '-' && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = 0;
    return buf;
}

static void print_value(const char *role, const smelt_value *v)
{
    printf("  %s %s %s [", role, v->name, smelt_dtype_name(v->dtype));
    for (int i = 0; i < v->ndim; i++) {
        if (v->dims[i] >= 0) printf(i ? ", %lld" : "%lld", (long long)v->dims[i]);
        else printf(i ? ", %s" : "%s", v->dim_names[i] ? v->dim_names[i] : "?");
    }
    printf("]\n");
}

static void print_text(const json_t *s, const smelt_model *m)
{
    char g[40], sb[128];
    printf("%s: %s %s (%s)\n", json_string_value(json_object_get(s, "path")), m->arch, m->kind == SMELT_KIND_LLM ? "language model" : "graph",
           json_string_value(json_object_get(s, "source")));
    if (m->kind == SMELT_KIND_LLM) {
        const smelt_llm_config *c = &m->llm;
        printf("  vocab %d, hidden %d, layers %d, heads %d (kv %d, head_dim %d), ffn %d, max positions %d\n", c->vocab_size, c->hidden,
               c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->max_pos);
        printf("  %s eps %g, %s", c->norm, c->norm_eps, c->pos);
        if (strcmp(c->pos, "rope") == 0) printf(" theta %g", c->rope_theta);
        printf(", %s, %s head%s\n", c->act, c->tied_embeddings ? "tied" : "untied", c->attn_qkv_bias ? ", q/k/v bias" : "");
    }
    for (int i = 0; i < m->n_opsets; i++) printf("  opset %s %" PRId64 "\n", m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx", m->opsets[i].version);
    printf("  parameters: %s\n", grouped(smelt_model_param_count(m), g, sizeof g));
    const char *k;
    json_t *v;
    printf("  bytes:");
    json_object_foreach(json_object_get(s, "bytes_by_dtype"), k, v) printf(" %s %s", k, grouped(json_integer_value(v), g, sizeof g));
    printf("\n");
    json_t *q = json_object_get(s, "quantization");
    if (q) {
        json_t *rc = json_object_get(q, "recipe");
        const char *method = json_string_value(json_object_get(rc, "method"));
        long long bits = json_integer_value(json_object_get(rc, "bits")), group = json_integer_value(json_object_get(rc, "group"));
        printf("  quantized: %lld weights (%s params), %.2f bits per weight with scales", (long long)json_integer_value(json_object_get(q, "weights")),
               grouped(json_integer_value(json_object_get(q, "params")), g, sizeof g), json_real_value(json_object_get(q, "bits_per_weight")));
        if (method && bits == 4) printf("; w4 g%lld %s, %s", group, json_is_true(json_object_get(rc, "asym")) ? "asym" : "sym", method);
        else if (method) printf("; w%lld, %s", bits, method);
        if (json_is_string(json_object_get(rc, "activations"))) printf(", %s activations", json_string_value(json_object_get(rc, "activations")));
        if (json_is_string(json_object_get(rc, "kv_cache"))) printf(", %s KV cache", json_string_value(json_object_get(rc, "kv_cache")));
        printf("\n");
    }
    if (m->n_nodes) {
        printf("  nodes: %d (", m->n_nodes);
        int first = 1;
        json_object_foreach(json_object_get(s, "ops"), k, v)
        {
            printf("%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
            first = 0;
        }
        printf(")\n");
    }
    for (int i = 0; i < m->n_inputs; i++) print_value("input ", &m->inputs[i]);
    for (int i = 0; i < m->n_outputs; i++) print_value("output", &m->outputs[i]);
    printf("  tensors: %d\n", m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const smelt_tensor *t = &m->tensors[i];
        printf("    %-48s %-5s %-18s %12s", t->name, smelt_dtype_name(t->dtype), smelt_shape_str(t->ndim, t->shape, sb, sizeof sb), grouped((int64_t)t->nbytes, g, sizeof g));
        if (t->quant.kind == SMELT_QUANT_GROUP) printf("  int%d group %d %s", t->quant.bits, t->quant.group_size, t->quant.symmetric ? "sym" : "asym");
        else if (t->quant.kind == SMELT_QUANT_PER_CHANNEL) printf("  int%d per-channel %s", t->quant.bits, t->quant.symmetric ? "sym" : "asym");
        printf("\n");
    }
}

CMD(inspect)
{
    bool json = false;
    const cli_opt opts[] = {{"json", 0, OPT_FLAG, &json, NULL, "print JSON"}, {0}};
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    smelt_source_kind src;
    smelt_err *err = smelt_source_kind_of(pos[0], &src);
    smelt_model *m = NULL;
    if (!err) err = smelt_load_model(pos[0], false, &m);
    if (err) return cli_fail("inspect", err);
    json_t *s = summary_json(pos[0], src, m);
    if (json) {
        json_dumpf(s, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        printf("\n");
    } else {
        print_text(s, m);
    }
    json_decref(s);
    smelt_model_free(m);
    return 0;
}
