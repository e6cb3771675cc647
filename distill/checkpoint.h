/* Training checkpoints: everything a run needs to continue exactly where it stopped, in one file
 * written atomically (temp + rename), so a kill at any moment leaves the previous checkpoint whole.
 *
 * Layout: the 8 bytes "SMELTCKP", a little-endian u64 header length, the header (JSON: format
 * version, step, optimizer step count, parameter count, the data loader's state, the run's
 * fingerprint and the SHA-256 of the payload), then the payload: parameters, Adam first and second
 * moments, each n_params f32.
 *
 * The fingerprint is a JSON object of everything that must not change across a resume (student
 * shape, seed, batch, data, schedule); loading refuses a checkpoint whose fingerprint differs,
 * naming the first key that does.
 */
#ifndef SMELT_DISTILL_CHECKPOINT_H
#define SMELT_DISTILL_CHECKPOINT_H

#include <jansson.h>

#include "distill/adamw.h"
#include "distill/data.h"
#include "distill/tmodel.h"

/* loss: the last step's loss, reported again by a resume that has no steps left */
smelt_err *ck_save(const char *path, const tm_model *m, const adamw_state *s, int64_t step, double loss, const dd_state *ds, const json_t *fingerprint);
/* Checks everything (magic, sizes, header, fingerprint, hash) before touching m, s or *ds. */
smelt_err *ck_load(const char *path, tm_model *m, adamw_state *s, int64_t *step, double *loss, dd_state *ds, const json_t *fingerprint);

#endif
