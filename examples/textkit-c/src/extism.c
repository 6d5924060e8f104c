/* Bulk helpers over the Extism kernel imports: 8 bytes per call where possible. */
#include <stdlib.h>
#include <string.h>
#include "extism.h"

char *extism_input(size_t *length) {
    uint64_t n = extism_input_length();
    char *buf = malloc(n + 1);
    if (!buf) return NULL;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word = extism_input_load_u64(i);
        memcpy(buf + i, &word, 8);
    }
    for (; i < n; i++) buf[i] = (char)extism_input_load_u8(i);
    buf[n] = 0;
    *length = (size_t)n;
    return buf;
}

ExtismHandle extism_store(const void *data, size_t length) {
    ExtismHandle at = extism_alloc(length);
    const char *p = data;
    size_t i = 0;
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        extism_store_u64(at + i, word);
    }
    for (; i < length; i++) extism_store_u8(at + i, (uint8_t)p[i]);
    return at;
}

void extism_output(const void *data, size_t length) {
    extism_output_set(extism_store(data, length), length);
}

int32_t extism_fail(const char *message) {
    extism_error_set(extism_store(message, strlen(message)));
    return 1;
}

void extism_log(const char *message) {
    extism_log_info(extism_store(message, strlen(message)));
}
