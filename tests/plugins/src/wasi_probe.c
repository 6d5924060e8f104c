/* Test plugin: what WASI lets a plugin see (env, files, stdout, stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(n) __attribute__((import_module("extism:host/env"), import_name(n)))
IMPORT("alloc") unsigned long long alloc(unsigned long long);
IMPORT("store_u8") void store_u8(unsigned long long, unsigned char);
IMPORT("output_set") void output_set(unsigned long long, unsigned long long);

static void output(const char *s) {
    size_t n = strlen(s);
    unsigned long long at = alloc(n);
    for (size_t i = 0; i < n; i++) store_u8(at + i, (unsigned char)s[i]);
    output_set(at, n);
}

__attribute__((export_name("env"))) int env(void) {
    const char *home = getenv("HOME");
    const char *path = getenv("PATH");
    output(home || path ? "visible" : "none");
    return 0;
}

__attribute__((export_name("readFile"))) int read_file(void) {
    FILE *f = fopen("/etc/passwd", "r");
    output(f ? "opened" : "denied");
    if (f) fclose(f);
    return 0;
}

__attribute__((export_name("print"))) int print(void) {
    printf("to stdout\n");
    fflush(stdout);
    fprintf(stderr, "to stderr\n");
    output("printed");
    return 0;
}
