/* File input and output: read-only mappings, bounded whole-file reads, atomic writes, hashing.
 *
 * Every writer of a user-visible file goes through smelt_atomic_*: data goes to a temporary file
 * beside the target, which is renamed over it only when complete, so a failed run never leaves a
 * partial output behind.
 */
#ifndef SMELT_IO_H
#define SMELT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

/* A read-only view of a whole file, mmapped (or an empty buffer for an empty file). */
typedef struct {
    const uint8_t *data;
    size_t size;
    char *path; /* owned copy, for messages */
} smelt_map;

/* Maps the file at path. On success *out owns the mapping; release with smelt_unmap. */
smelt_err *smelt_map_file(const char *path, smelt_map *out);
void smelt_unmap(smelt_map *m);

/* Reads a whole file into a NUL-terminated malloc'd buffer; fails if it is larger than max_bytes.
 * The caller frees *out. */
smelt_err *smelt_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* An output file being written: fp writes to tmp_path until commit renames it to path. */
typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} smelt_atomic;

smelt_err *smelt_atomic_open(const char *path, smelt_atomic *out);
/* Flushes, fsyncs and renames over the target; on any failure removes the temporary file. Always
 * releases the handle. */
smelt_err *smelt_atomic_commit(smelt_atomic *a);
/* Removes the temporary file and releases the handle. Safe on a zeroed handle. */
void smelt_atomic_abort(smelt_atomic *a);
/* Writes a whole buffer to path atomically. */
smelt_err *smelt_write_file_atomic(const char *path, const void *data, size_t len);

/* Joins a folder and a file name ("a/b" + "c" -> "a/b/c"). The caller frees the result; NULL on OOM. */
char *smelt_path_join(const char *dir, const char *name);
bool smelt_is_dir(const char *path);
bool smelt_file_exists(const char *path);
/* The last component of a path (a pointer into path). */
const char *smelt_path_base(const char *path);

/* SHA-256 of a buffer as 64 lowercase hex digits plus NUL. */
void smelt_sha256_hex(const void *data, size_t len, char out[65]);

/* Incremental SHA-256 (for files read in pieces). */
typedef struct smelt_sha256 smelt_sha256;
smelt_sha256 *smelt_sha256_begin(void);
void smelt_sha256_update(smelt_sha256 *h, const void *data, size_t len);
/* Writes the hex digest and frees the state. */
void smelt_sha256_end(smelt_sha256 *h, char out[65]);

#endif
