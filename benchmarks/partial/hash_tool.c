/* Target program for the partial-overlap benchmark: digests and MACs of files with Nettle (linked -static). */
#include <nettle/base16.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

static void hex(const char *label, const uint8_t *d, size_t n)
{
    char out[BASE16_ENCODE_LENGTH(SHA512_DIGEST_SIZE) + 1];
    base16_encode_update(out, n, d);
    out[BASE16_ENCODE_LENGTH(n)] = 0;
    printf("%-8s %s\n", label, out);
}

static void b64(const char *label, const uint8_t *d, size_t n)
{
    char out[BASE64_ENCODE_RAW_LENGTH(SHA512_DIGEST_SIZE) + 1];
    base64_encode_raw(out, n, d);
    out[BASE64_ENCODE_RAW_LENGTH(n)] = 0;
    printf("%-8s %s\n", label, out);
}

int main(int argc, char **argv)
{
    struct md5_ctx md5; struct sha1_ctx sha1; struct sha256_ctx sha256; struct sha512_ctx sha512;
    struct hmac_sha256_ctx mac;
    uint8_t buf[65536], d[SHA512_DIGEST_SIZE];
    const char *key = argc > 2 ? argv[2] : "symbridge";
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
    size_t n;
    if (!f) { perror(argv[1]); return 1; }
    md5_init(&md5); sha1_init(&sha1); sha256_init(&sha256); sha512_init(&sha512);
    hmac_sha256_set_key(&mac, strlen(key), (const uint8_t *)key);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        md5_update(&md5, n, buf); sha1_update(&sha1, n, buf); sha256_update(&sha256, n, buf);
        sha512_update(&sha512, n, buf); hmac_sha256_update(&mac, n, buf);
    }
    md5_digest(&md5, MD5_DIGEST_SIZE, d); hex("md5", d, MD5_DIGEST_SIZE);
    sha1_digest(&sha1, SHA1_DIGEST_SIZE, d); hex("sha1", d, SHA1_DIGEST_SIZE);
    sha256_digest(&sha256, SHA256_DIGEST_SIZE, d); hex("sha256", d, SHA256_DIGEST_SIZE);
    sha512_digest(&sha512, SHA512_DIGEST_SIZE, d); b64("sha512", d, SHA512_DIGEST_SIZE);
    hmac_sha256_digest(&mac, SHA256_DIGEST_SIZE, d); hex("hmac", d, SHA256_DIGEST_SIZE);
    return 0;
}
