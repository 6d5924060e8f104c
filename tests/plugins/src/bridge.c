/* Test plugin: forwards its input to modrun's host functions and returns
 * what they answer, so tests can drive every host function over HTTP. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

typedef unsigned long long u64;
#define ENV(n) __attribute__((import_module("extism:host/env"), import_name(n)))
#define USER(n) __attribute__((import_module("extism:host/user"), import_name(n)))
#define EXPORT(n) __attribute__((export_name(n)))

ENV("input_length") u64 input_length(void);
ENV("input_load_u8") unsigned char input_load_u8(u64);
ENV("alloc") u64 alloc(u64);
ENV("length") u64 length(u64);
ENV("load_u8") unsigned char load_u8(u64);
ENV("store_u8") void store_u8(u64, unsigned char);
ENV("output_set") void output_set(u64, u64);
ENV("config_get") u64 config_get(u64);
ENV("http_request") u64 http_request(u64, u64);
ENV("http_status_code") int http_status_code(void);
USER("model_invoke") u64 model_invoke(u64);
USER("sql_query") u64 sql_query(u64);
USER("sql_execute") u64 sql_execute(u64);
USER("dgraph_query") u64 dgraph_query(u64);
USER("dgraph_mutate") u64 dgraph_mutate(u64);
USER("dgraph_alter") u64 dgraph_alter(u64);

static char *input(size_t *n) {
    *n = input_length();
    char *buf = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) buf[i] = input_load_u8(i);
    buf[*n] = 0;
    return buf;
}

static u64 store(const char *data, size_t n) {
    if (n == 0) return 0;
    u64 at = alloc(n);
    for (size_t i = 0; i < n; i++) store_u8(at + i, data[i]);
    return at;
}

static char *load(u64 handle, size_t *n) {
    *n = handle ? length(handle) : 0;
    char *buf = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) buf[i] = load_u8(handle + i);
    buf[*n] = 0;
    return buf;
}

static int forward(u64 (*fn)(u64)) {
    size_t n;
    char *in = input(&n);
    u64 answer = fn(store(in, n));
    output_set(answer, length(answer));
    return 0;
}

EXPORT("model") int model(void) { return forward(model_invoke); }
EXPORT("sqlQuery") int sqlq(void) { return forward(sql_query); }
EXPORT("sqlExec") int sqle(void) { return forward(sql_execute); }
EXPORT("dgQuery") int dgq(void) { return forward(dgraph_query); }
EXPORT("dgMutate") int dgm(void) { return forward(dgraph_mutate); }
EXPORT("dgAlter") int dga(void) { return forward(dgraph_alter); }

/* input: Extism request JSON, a newline, then the body; output: status, newline, body */
EXPORT("fetch") int fetch(void) {
    size_t n;
    char *in = input(&n);
    char *nl = strchr(in, '\n');
    size_t req_len = nl ? (size_t)(nl - in) : n;
    u64 body = nl ? store(nl + 1, n - req_len - 1) : 0;
    u64 resp = http_request(store(in, req_len), body);
    size_t rn;
    char *rbody = load(resp, &rn);
    char *out = malloc(rn + 16);
    int len = snprintf(out, 16, "%d\n", http_status_code());
    memcpy(out + len, rbody, rn);
    u64 h = store(out, len + rn);
    output_set(h, len + rn);
    return 0;
}

/* input: a config key; output: its value or "(unset)" */
EXPORT("config") int config(void) {
    size_t n;
    char *key = input(&n);
    u64 v = config_get(store(key, n));
    if (!v) { u64 h = store("(unset)", 7); output_set(h, 7); return 0; }
    output_set(v, length(v));
    return 0;
}

ENV("log_info") void log_info(u64);
ENV("error_set") void error_set(u64);

/* logs the value of a config key (to check secrets are scrubbed from logs) */
EXPORT("logConfig") int log_config(void) {
    size_t n;
    char *key = input(&n);
    log_info(config_get(store(key, n)));
    return 0;
}

/* fails with the value of a config key as its error message */
EXPORT("failConfig") int fail_config(void) {
    size_t n;
    char *key = input(&n);
    error_set(config_get(store(key, n)));
    return 1;
}
