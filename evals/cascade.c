/* Threshold sweep of a student/reference cascade (see cascade.h). */
#include "evals/cascade.h"

#include <math.h>

json_t *cascade_sweep(const cascade_spec *c, const agree_window *w, int n_win, int window)
{
    double ref_nll = 0;
    for (int i = 0; i < n_win; i++) ref_nll += w[i].ref_nll;
    double scored = (double)n_win * (window - 1), ref_ppl = exp(ref_nll / scored);
    json_t *pts = json_array();
    for (int k = 0; k < c->n_thresholds; k++) {
        double th = c->thresholds[k], nll = 0, agree = 0;
        int routed = 0;
        for (int i = 0; i < n_win; i++) {
            bool fallback = c->entropy ? w[i].entropy > th : w[i].max_prob < th;
            routed += fallback;
            nll += fallback ? w[i].ref_nll : w[i].nll;
            agree += fallback ? window - 1 : w[i].agree;
        }
        double ppl = exp(nll / scored);
        json_array_append_new(pts, json_pack("{s:f, s:i, s:i, s:f, s:f, s:f, s:f}", "threshold", th, "windows", n_win, "windows_routed", routed, "fallback_share",
                                             (double)routed / n_win, "ppl", ppl, "ppl_increase_pct", (ppl / ref_ppl - 1) * 100, "top1", agree / scored));
    }
    return json_pack("{s:s, s:o}", "confidence", c->entropy ? "entropy" : "max_prob", "points", pts);
}

json_t *cascade_blend(const json_t *domains, const json_t *student_cost, const json_t *ref_cost)
{
    static const char *const prices[] = {"usd_per_1m_input_tokens", "usd_per_1m_output_tokens", "usd_per_request"};
    json_t *out = json_array();
    const char *dn;
    json_t *d;
    /* thresholds are the same in every domain: take them from the first with a sweep */
    const json_t *first = NULL;
    json_object_foreach((json_t *)domains, dn, d) if (!first) first = json_object_get(json_object_get(d, "cascade"), "points");
    size_t n = json_array_size(first);
    for (size_t k = 0; k < n; k++) {
        double windows = 0, routed = 0;
        json_object_foreach((json_t *)domains, dn, d)
        {
            const json_t *pt = json_array_get(json_object_get(json_object_get(d, "cascade"), "points"), k);
            windows += json_number_value(json_object_get(pt, "windows"));
            routed += json_number_value(json_object_get(pt, "windows_routed"));
        }
        double f = windows > 0 ? routed / windows : 0;
        json_t *o = json_pack("{s:f, s:f}", "threshold", json_number_value(json_object_get(json_array_get(first, k), "threshold")), "fallback_share", f);
        for (int i = 0; i < 3; i++)
            json_object_set_new(o, prices[i],
                                json_real(json_number_value(json_object_get(student_cost, prices[i])) + f * json_number_value(json_object_get(ref_cost, prices[i]))));
        json_array_append_new(out, o);
    }
    return out;
}
