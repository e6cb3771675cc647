/* Making the student: a subset of the teacher's layers (with its embedding, final norm and head; GPT-2
 * also its position table), or a new config (Llama family or GPT-2, its own width and depth) whose
 * token embedding (and untied head) is copied from the teacher when the widths agree, its final norm
 * and GPT-2 position table too when the architectures agree, and whose layers start from a seeded
 * random draw. The student always shares the teacher's vocabulary and tokenizer. */
#ifndef SMELT_DISTILL_STUDENT_H
#define SMELT_DISTILL_STUDENT_H

#include <stdint.h>

#include "distill/tmodel.h"

/* "0,2,4" -> layers (malloc'd). Indices must be in [0, n_layers), strictly increasing. */
smelt_err *student_parse_layers(const char *spec, int n_layers, int **layers, int *n);
/* Layers 0, every, 2*every, ... below n_layers (malloc'd). */
smelt_err *student_every_layers(int every, int n_layers, int **layers, int *n);

/* The student keeping the teacher's layers `layers[0..n)` in that order. */
smelt_err *student_from_layers(const smelt_model *teacher, const char *teacher_name, const int *layers, int n, tm_model **out);

/* The student described by a Hugging Face config.json at config_path. */
smelt_err *student_from_config(const smelt_model *teacher, const char *teacher_name, const char *config_path, uint64_t seed, tm_model **out);

#endif
