/* The Extism side of bench_calls.py's Modus-vs-Extism comparison: the same
 * work as tests/modus/plugin's `add` and `makePeople`, in the Extism ABI
 * (JSON in and out through the kernel, parsed and written by the guest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "extism.h"

/* add: {"a": N, "b": M} -> N + M */
EXTISM_EXPORT("add") int32_t add(void) {
    size_t n;
    char *in = extism_input(&n);
    if (!in) return extism_fail("out of memory");
    long a = 0, b = 0;
    const char *pa = strstr(in, "\"a\":"), *pb = strstr(in, "\"b\":");
    if (!pa || !pb) { free(in); return extism_fail("expected {\"a\": N, \"b\": M}"); }
    a = strtol(pa + 4, NULL, 10);
    b = strtol(pb + 4, NULL, 10);
    free(in);
    char out[32];
    int len = snprintf(out, sizeof out, "%ld", a + b);
    extism_output(out, (size_t)len);
    return 0;
}

/* makePeople: the same three people tests/modus/plugin makes, as JSON */
EXTISM_EXPORT("makePeople") int32_t make_people(void) {
    static const char *names[] = {"Ada", "Alan", "Grace"};
    static const int ages[] = {36, 41, 85};
    static const char *emails[] = {"\"ada@example.com\"", "null", "null"};
    static const char *tags[] = {"[\"math\",\"engines\"]", "[]", "[\"navy\"]"};
    char out[512];
    size_t w = 0;
    out[w++] = '[';
    for (int i = 0; i < 3; i++) {
        w += (size_t)snprintf(out + w, sizeof out - w, "%s{\"name\":\"%s\",\"age\":%d,\"email\":%s,\"tags\":%s}",
                              i ? "," : "", names[i], ages[i], emails[i], tags[i]);
    }
    out[w++] = ']';
    extism_output(out, w);
    return 0;
}
