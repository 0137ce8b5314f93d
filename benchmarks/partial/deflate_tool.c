/* Target program for the partial-overlap benchmark: gzip, zlib and raw deflate round trips with libdeflate
   (linked -static), with their checksums. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int roundtrip(const char *what, const void *in, size_t n, int level,
                     size_t (*compress)(struct libdeflate_compressor *, const void *, size_t, void *, size_t),
                     size_t (*bound)(struct libdeflate_compressor *, size_t),
                     enum libdeflate_result (*decompress)(struct libdeflate_decompressor *, const void *, size_t,
                                                          void *, size_t, size_t *))
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t cap = bound(c, n), m, got = 0;
    char *z = malloc(cap), *back = malloc(n ? n : 1);
    m = compress(c, in, n, z, cap);
    int ok = m && decompress(d, z, m, back, n, &got) == LIBDEFLATE_SUCCESS && got == n && !memcmp(back, in, n);
    printf("%-6s level %2d: %zu -> %zu %s\n", what, level, n, m, ok ? "ok" : "FAILED");
    free(z); free(back);
    libdeflate_free_compressor(c);
    libdeflate_free_decompressor(d);
    return ok;
}

int main(int argc, char **argv)
{
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
    static char buf[1 << 20];
    if (!f) { perror(argv[1]); return 1; }
    size_t n = fread(buf, 1, sizeof buf, f);
    printf("crc32 %08x adler32 %08x\n", libdeflate_crc32(0, buf, n), libdeflate_adler32(1, buf, n));
    int ok = 1;
    for (int level = 1; level <= 12; level += 5) {
        ok &= roundtrip("gzip", buf, n, level, libdeflate_gzip_compress, libdeflate_gzip_compress_bound,
                        libdeflate_gzip_decompress);
        ok &= roundtrip("zlib", buf, n, level, libdeflate_zlib_compress, libdeflate_zlib_compress_bound,
                        libdeflate_zlib_decompress);
        ok &= roundtrip("raw", buf, n, level, libdeflate_deflate_compress, libdeflate_deflate_compress_bound,
                        libdeflate_deflate_decompress);
    }
    return !ok;
}
