/* File mappings, bounded reads, atomic writes and SHA-256 (through OpenSSL's libcrypto). */
#define _POSIX_C_SOURCE 200809L
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

smelt_err *smelt_map_file(const char *path, smelt_map *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return SMELT_ERR(SMELT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return SMELT_ERR(SMELT_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return SMELT_ERR(SMELT_E_IO, "%s: not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return SMELT_ERR(SMELT_E_IO, "%s: cannot map: %s", path, strerror(e));
        }
        out->data = p;
    } else {
        out->data = (const uint8_t *)"";
    }
    close(fd);
    out->path = strdup(path);
    if (!out->path) {
        smelt_unmap(out);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    return NULL;
}

void smelt_unmap(smelt_map *m)
{
    if (m->data && m->size > 0) munmap((void *)m->data, m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

smelt_err *smelt_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return SMELT_ERR(SMELT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return SMELT_ERR(SMELT_E_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size > max_bytes) {
        fclose(f);
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: file is %zu bytes, more than the %zu allowed", path, size, max_bytes);
    }
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != size || rerr) {
        free(buf);
        return SMELT_ERR(SMELT_E_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    buf[size] = 0;
    *out = buf;
    if (out_len) *out_len = size;
    return NULL;
}

smelt_err *smelt_atomic_open(const char *path, smelt_atomic *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(path) + 16;
    out->path = strdup(path);
    out->tmp_path = malloc(n);
    if (!out->path || !out->tmp_path) {
        smelt_atomic_abort(out);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    snprintf(out->tmp_path, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(out->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(out->tmp_path);
        out->tmp_path = NULL;
        smelt_atomic_abort(out);
        return SMELT_ERR(SMELT_E_IO, "%s: cannot create: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    out->fp = fdopen(fd, "wb");
    if (!out->fp) {
        close(fd);
        smelt_atomic_abort(out);
        return SMELT_ERR(SMELT_E_IO, "%s: cannot open for writing", path);
    }
    return NULL;
}

smelt_err *smelt_atomic_commit(smelt_atomic *a)
{
    smelt_err *err = NULL;
    if (fflush(a->fp) != 0 || ferror(a->fp) || fsync(fileno(a->fp)) != 0)
        err = SMELT_ERR(SMELT_E_IO, "%s: write failed: %s", a->path, strerror(errno));
    if (fclose(a->fp) != 0 && !err) err = SMELT_ERR(SMELT_E_IO, "%s: close failed: %s", a->path, strerror(errno));
    a->fp = NULL;
    if (!err && rename(a->tmp_path, a->path) != 0)
        err = SMELT_ERR(SMELT_E_IO, "%s: cannot rename into place: %s", a->path, strerror(errno));
    if (err) unlink(a->tmp_path);
    free(a->path);
    free(a->tmp_path);
    memset(a, 0, sizeof *a);
    return err;
}

void smelt_atomic_abort(smelt_atomic *a)
{
    if (a->fp) fclose(a->fp);
    if (a->tmp_path) unlink(a->tmp_path);
    free(a->path);
    free(a->tmp_path);
    memset(a, 0, sizeof *a);
}

smelt_err *smelt_write_file_atomic(const char *path, const void *data, size_t len)
{
    smelt_atomic a;
    SMELT_TRY(smelt_atomic_open(path, &a));
    if (len && fwrite(data, 1, len, a.fp) != len) {
        smelt_atomic_abort(&a);
        return SMELT_ERR(SMELT_E_IO, "%s: write failed", path);
    }
    return smelt_atomic_commit(&a);
}

char *smelt_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

bool smelt_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool smelt_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

const char *smelt_path_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

struct smelt_sha256 {
    EVP_MD_CTX *ctx;
};

smelt_sha256 *smelt_sha256_begin(void)
{
    smelt_sha256 *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void smelt_sha256_update(smelt_sha256 *h, const void *data, size_t len)
{
    if (h && len) EVP_DigestUpdate(h->ctx, data, len);
}

void smelt_sha256_end(smelt_sha256 *h, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    out[0] = 0;
    if (!h) return;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32) {
        for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void smelt_sha256_hex(const void *data, size_t len, char out[65])
{
    smelt_sha256 *h = smelt_sha256_begin();
    smelt_sha256_update(h, data, len);
    smelt_sha256_end(h, out);
}
