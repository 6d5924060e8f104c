/* modrun example plugin in C: small text utilities.
 * Built as a WASI reactor; printf goes to WASI stdout, which modrun captures
 * into the call's logs. The schema (../modrun.schema.json) is embedded into
 * the wasm as the "modrun.schema" custom section at build time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "extism.h"

__asm__(
    ".section .custom_section.modrun.schema,\"\",@\n"
    ".incbin \"modrun.schema.json\"\n"
    ".text\n");

/* noop: does nothing (benchmarks measure call overhead with it). */
EXTISM_EXPORT("noop") int32_t noop(void) { return 0; }

/* echo: returns its input unchanged. */
EXTISM_EXPORT("echo") int32_t echo(void) {
    size_t n;
    char *in = extism_input(&n);
    if (!in) return extism_fail("out of memory");
    extism_output(in, n);
    free(in);
    return 0;
}

/* reverse: reverses a UTF-8 string by code point. */
EXTISM_EXPORT("reverse") int32_t reverse(void) {
    size_t n;
    char *in = extism_input(&n);
    char *out = malloc(n + 1);
    if (!in || !out) return extism_fail("out of memory");
    size_t end = n;
    size_t w = 0;
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && ((unsigned char)in[start] & 0xC0) == 0x80) start--;
        memcpy(out + w, in + start, end - start);
        w += end - start;
        end = start;
    }
    extism_output(out, w);
    free(in);
    free(out);
    return 0;
}

/* rot13: the classic letter rotation; fails on non-ASCII input. */
EXTISM_EXPORT("rot13") int32_t rot13(void) {
    size_t n;
    char *s = extism_input(&n);
    if (!s) return extism_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            free(s);
            return extism_fail("rot13 takes ASCII text only");
        }
        if (c >= 'a' && c <= 'z') s[i] = (char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z') s[i] = (char)('A' + (c - 'A' + 13) % 26);
    }
    extism_output(s, n);
    free(s);
    return 0;
}

/* wordCount: counts bytes, words and lines; returns a JSON object. */
EXTISM_EXPORT("wordCount") int32_t word_count(void) {
    size_t n;
    char *s = extism_input(&n);
    if (!s) return extism_fail("out of memory");
    size_t words = 0, lines = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n') lines++;
        int space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in_word) words++;
        in_word = !space;
    }
    if (n > 0 && s[n - 1] != '\n') lines++;
    printf("counted %zu words in %zu bytes\n", words, n);
    fflush(stdout);
    char out[128];
    int len = snprintf(out, sizeof out, "{\"bytes\":%zu,\"words\":%zu,\"lines\":%zu}", n, words, lines);
    extism_output(out, (size_t)len);
    free(s);
    return 0;
}
