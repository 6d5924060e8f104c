/* The Extism plugin ABI as seen from C: imports from "extism:host/env".
 * Written for modrun from the ABI description (docs/plugin-abi.md); any
 * Extism host can run a plugin built against it. */
#ifndef MODRUN_EXTISM_H
#define MODRUN_EXTISM_H

#include <stdint.h>
#include <stddef.h>

#define EXTISM_IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))
#define EXTISM_EXPORT(name) __attribute__((export_name(name)))

typedef uint64_t ExtismHandle;

EXTISM_IMPORT("input_length") uint64_t extism_input_length(void);
EXTISM_IMPORT("input_load_u8") uint8_t extism_input_load_u8(uint64_t index);
EXTISM_IMPORT("input_load_u64") uint64_t extism_input_load_u64(uint64_t index);
EXTISM_IMPORT("alloc") ExtismHandle extism_alloc(uint64_t length);
EXTISM_IMPORT("length") uint64_t extism_length(ExtismHandle handle);
EXTISM_IMPORT("free") void extism_free(ExtismHandle handle);
EXTISM_IMPORT("store_u8") void extism_store_u8(ExtismHandle at, uint8_t value);
EXTISM_IMPORT("store_u64") void extism_store_u64(ExtismHandle at, uint64_t value);
EXTISM_IMPORT("load_u8") uint8_t extism_load_u8(ExtismHandle at);
EXTISM_IMPORT("load_u64") uint64_t extism_load_u64(ExtismHandle at);
EXTISM_IMPORT("output_set") void extism_output_set(ExtismHandle at, uint64_t length);
EXTISM_IMPORT("error_set") void extism_error_set(ExtismHandle handle);
EXTISM_IMPORT("log_info") void extism_log_info(ExtismHandle message);

/* Copy the call's input into a malloc'd buffer (NUL-terminated for convenience). */
char *extism_input(size_t *length);
/* Publish bytes as the call's output. */
void extism_output(const void *data, size_t length);
/* Copy bytes into a new kernel block. */
ExtismHandle extism_store(const void *data, size_t length);
/* Set the call's error message; return the result from the export. */
int32_t extism_fail(const char *message);
void extism_log(const char *message);

#endif
