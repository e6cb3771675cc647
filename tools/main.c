/* smelt: one binary, one subcommand a file (tools/cmd_<name>.c), dispatched from this table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", cmd_inspect, "show a model's architecture, parameters and tensors"},
    {"import", cmd_import, "import a Hugging Face folder or an ONNX file into a .smelt artifact"},
    {"export", cmd_export, "write a .smelt artifact back as a Hugging Face folder"},
    {"tokenize", cmd_tokenize, "encode text to token ids (or decode ids to text)"},
    {"verify", cmd_verify, "check every checksum in a .smelt artifact"},
    {"quant", cmd_quant, "quantize a language model's linear layers (w8, w4 groups) into an artifact"},
    {"run", cmd_run, "generate text from a prompt (greedy or sampled), streamed"},
    {"perplexity", cmd_perplexity, "perplexity of a language model on a text file"},
    {"synth", cmd_synth, "write a random-weight Llama or GPT-2 checkpoint folder"},
    {"eval", cmd_eval, "measure an artifact on a suite, a workload and a hardware profile"},
    {"gate", cmd_gate, "pass or fail an eval result against a release policy (exit 0/1)"},
    {"report", cmd_report, "Markdown table and quality-vs-cost SVG chart of eval results"},
    {"distill", cmd_distill, "train a smaller student from a teacher (knowledge distillation) into an artifact"},
};

static void print_commands(FILE *f)
{
    fprintf(f, "usage: smelt COMMAND [ARGS...]\n\nsmelt %s: a model optimization toolchain\n\ncommands:\n", SMELT_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n\nRun 'smelt COMMAND --help' for a command's options.\n", "help", "list commands");
}

/* "smelt CMD ARGS..." as one string for provenance records (argv[0]'s path left out). */
static char *join_args(int argc, char **argv)
{
    size_t n = sizeof "smelt";
    for (int i = 1; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    strcpy(s, "smelt");
    for (int i = 1; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_commands(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_commands(stdout);
        return cli_finish_stdout("help");
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("smelt %s\n", SMELT_VERSION);
        return cli_finish_stdout("version");
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) != 0) continue;
        char *line = join_args(argc, argv);
        if (line) cli_command_line = line;
        int rc = commands[i].fn(argc - 1, argv + 1);
        int out_rc = cli_finish_stdout(name);
        free(line);
        return rc ? rc : out_rc;
    }
    fprintf(stderr, "smelt: unknown command '%s'\n\n", name);
    print_commands(stderr);
    return 2;
}
