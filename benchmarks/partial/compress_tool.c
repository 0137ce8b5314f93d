/* Reference program for the partial-overlap benchmark: compresses files with LZ4 (block and HC API). */
#include <lz4.h>
#include <lz4hc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, len > 0 ? (size_t)len : 0, f);
    fclose(f);
    return buf;
}

static int compress_file(const char *in, const char *out, int level)
{
    size_t n;
    char *src = read_all(in, &n);
    if (!src) { perror(in); return 1; }
    int cap = LZ4_compressBound((int)n);
    char *dst = malloc(cap);
    int m = level > 0 ? LZ4_compress_HC(src, dst, (int)n, cap, level) : LZ4_compress_default(src, dst, (int)n, cap);
    FILE *f = fopen(out, "wb");
    if (!f || m <= 0) { free(src); free(dst); return 1; }
    fwrite(dst, 1, m, f);
    fclose(f);
    printf("%s: %zu -> %d bytes (%s)\n", in, n, m, LZ4_versionString());
    free(src);
    free(dst);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s IN OUT [LEVEL]\n", argv[0]); return 2; }
    return compress_file(argv[1], argv[2], argc > 3 ? atoi(argv[3]) : 0);
}
