/* Target program for the partial-overlap benchmark: another tool that shares only part of LZ4's code. */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats { long files, bytes, failures; };

static void report(const struct stats *s)
{
    printf("%ld files, %ld bytes, %ld failures\n", s->files, s->bytes, s->failures);
}

static int check_buffer(const char *data, int n, struct stats *s)
{
    int cap = LZ4_compressBound(n);
    char *z = malloc(cap), *back = malloc(n > 0 ? n : 1);
    int m = LZ4_compress_fast(data, z, n, cap, 3);
    int k = LZ4_decompress_safe(z, back, m, n);
    int ok = k == n && memcmp(back, data, n) == 0;
    s->files++;
    s->bytes += n;
    s->failures += !ok;
    free(z);
    free(back);
    return ok;
}

int main(int argc, char **argv)
{
    struct stats s = {0, 0, 0};
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { perror(argv[i]); s.failures++; continue; }
        char buf[1 << 16];
        int n = (int)fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (!check_buffer(buf, n, &s)) fprintf(stderr, "%s: round trip failed\n", argv[i]);
    }
    report(&s);
    return s.failures != 0;
}
