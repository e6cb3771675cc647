/* The shared option parser and error printing used by every subcommand. */
#include "tools/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

const char *cli_command_line = "smelt";

static void print_help(const cli_cmd_info *info, const cli_opt *opts)
{
    printf("usage: %s\n\n%s\n", info->usage, info->summary);
    if (info->details) printf("\n%s\n", info->details);
    printf("\noptions:\n");
    for (const cli_opt *o = opts; o && o->name; o++) {
        char left[64];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n", "-v, --verbose", "show where errors were raised in the source");
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

static int usage_error(const cli_cmd_info *info, const char *fmt, const char *arg)
{
    fprintf(stderr, "smelt %s: ", info->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: %s\n(see 'smelt %s --help')\n", info->usage, info->name);
    return 2;
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len, char short_name)
{
    for (const cli_opt *o = opts; o && o->name; o++) {
        if (short_name && o->short_name == short_name) return o;
        if (!short_name && strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    }
    return NULL;
}

static int set_value(const cli_cmd_info *info, const cli_opt *o, const char *val)
{
    char *end;
    switch (o->type) {
    case OPT_STR:
        *(const char **)o->dest = val;
        return 0;
    case OPT_STRS: {
        cli_strs *s = o->dest;
        if (s->n >= (int)(sizeof s->v / sizeof s->v[0])) return usage_error(info, "too many --%s values", o->name);
        s->v[s->n++] = val;
        return 0;
    }
    case OPT_INT:
        errno = 0;
        *(long *)o->dest = strtol(val, &end, 10);
        if (errno || end == val || *end) return usage_error(info, "'%s' is not an integer", val);
        return 0;
    case OPT_DOUBLE:
        errno = 0;
        *(double *)o->dest = strtod(val, &end);
        if (errno || end == val || *end) return usage_error(info, "'%s' is not a number", val);
        return 0;
    case OPT_FLAG:
        break;
    }
    return 0;
}

int cli_parse(const cli_cmd_info *info, const cli_opt *opts, int argc, char **argv, const char **pos, int min_pos,
              int max_pos, int *n_pos)
{
    *n_pos = 0;
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == 0) {
            if (*n_pos >= max_pos) return usage_error(info, "unexpected argument '%s'", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(info, opts);
            return CLI_PARSE_HELP;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            smelt_verbose++;
            continue;
        }
        const cli_opt *o;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_opt(opts, name, len, 0);
            if (eq) inline_val = eq + 1;
        } else {
            if (a[2] != 0) return usage_error(info, "unknown option '%s'", a);
            o = find_opt(opts, NULL, 0, a[1]);
        }
        if (!o) return usage_error(info, "unknown option '%s'", a);
        if (o->type == OPT_FLAG) {
            if (inline_val) return usage_error(info, "option '%s' takes no value", a);
            *(bool *)o->dest = true;
            continue;
        }
        const char *val = inline_val;
        if (!val) {
            if (i + 1 >= argc) return usage_error(info, "option '%s' needs a value", a);
            val = argv[++i];
        }
        int rc = set_value(info, o, val);
        if (rc) return rc;
    }
    if (*n_pos < min_pos) return usage_error(info, "%s", "missing argument");
    return CLI_PARSE_OK;
}

int cli_fail(const char *cmd, smelt_err *err)
{
    fflush(stdout);
    fprintf(stderr, "smelt %s: %s\n", cmd, smelt_err_msg(err));
    if (smelt_verbose) fprintf(stderr, "  (raised at %s)\n", smelt_err_where(err));
    smelt_err_free(err);
    return 1;
}

int cli_finish_stdout(const char *cmd)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "smelt %s: error writing to standard output\n", cmd);
        return 1;
    }
    return 0;
}
