/* Provenance: which files a model came from. Kept in m->meta["sources"] as an array of
 * {"path", "bytes", "sha256"} objects (sha256 omitted when hashing was not asked for), written into
 * every artifact's manifest so a report can say exactly what was measured. */
#ifndef SMELT_PROVENANCE_H
#define SMELT_PROVENANCE_H

#include "core/ir.h"

/* Appends path (its size, and its SHA-256 when hash is true) to m's sources. */
smelt_err *provenance_add_file(smelt_model *m, const char *path, bool hash);
/* Appends every shard named by a model.safetensors.index.json, in order of first mention. */
smelt_err *provenance_add_shards(smelt_model *m, const char *index_path, bool hash);

#endif
