/* Error values for library code.
 *
 * Library functions never print or exit: they return a smelt_err * (NULL on success). An error
 * carries one user-facing message, which callers may prefix with context as it travels up
 * ("model.safetensors: tensor 'x': data_offsets [10, 8] out of order"), a kind that tells a
 * truncated file from a corrupt one, and the C source location where it was raised (shown with -v).
 * Ownership: whoever receives an error owns it and must pass it on or free it with smelt_err_free.
 */
#ifndef SMELT_ERR_H
#define SMELT_ERR_H

#include <stdarg.h>

typedef enum {
    SMELT_E_GENERIC = 1,
    SMELT_E_IO,          /* open/read/write/rename failed */
    SMELT_E_TRUNCATED,   /* the file ends before the data it describes */
    SMELT_E_CORRUPT,     /* the bytes are there but make no sense (bad JSON, offsets, checksums) */
    SMELT_E_UNSUPPORTED, /* valid input that smelt does not implement */
    SMELT_E_INVALID,     /* a bad argument or option value from the caller */
    SMELT_E_NOMEM,
} smelt_err_kind;

typedef struct smelt_err smelt_err;

/* Creates an error; use the SMELT_ERR macro so the source location is recorded. */
smelt_err *smelt_err_new(smelt_err_kind kind, const char *src_file, int src_line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes context to an existing error ("ctx: old message") and returns it; err may be NULL, in
 * which case NULL is returned. Takes ownership of err. */
smelt_err *smelt_err_wrap(smelt_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *smelt_err_msg(const smelt_err *err);
smelt_err_kind smelt_err_kind_of(const smelt_err *err);
/* "core/io.c:42": where the error was first raised. */
const char *smelt_err_where(const smelt_err *err);
void smelt_err_free(smelt_err *err);

#define SMELT_ERR(kind, ...) smelt_err_new((kind), __FILE__, __LINE__, __VA_ARGS__)
/* Propagates an error from an expression, for functions whose cleanup is trivial. */
#define SMELT_TRY(expr)                 \
    do {                                \
        smelt_err *try_err_ = (expr);   \
        if (try_err_) return try_err_;  \
    } while (0)

#endif
