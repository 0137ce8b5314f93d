/* A program that hashes its argument with OpenSSL (EVP and the one-shot SHA1), linked statically: most of
   libcrypto and glibc end up inside it (benchmarks/field_static.py). */
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
int main(int argc, char **argv) {
    unsigned char md[64]; unsigned int n = 0;
    const char *s = argc > 1 ? argv[1] : "abc";
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, s, strlen(s));
    EVP_DigestFinal_ex(c, md, &n);
    EVP_MD_CTX_free(c);
    for (unsigned i = 0; i < n; i++) printf("%02x", md[i]);
    printf("\n");
    SHA1((const unsigned char *)s, strlen(s), md);
    return 0;
}
