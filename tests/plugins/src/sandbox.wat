;; Test plugin: misbehaving and minimal functions for the sandbox tests.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"url\":\"https://example.com/\",\"method\":\"GET\"}")

  (func $out (param $byte i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $h) (local.get $byte))
    (call $output_set (local.get $h) (i64.const 1)))

  (func (export "noop") (result i32) (i32.const 0))
  ;; zero-copy echo: publish the input block as the output
  (func (export "echo") (result i32)
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))
  ;; never returns
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  ;; grows its memory until refused, then traps
  (func (export "grow") (result i32)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
  ;; allocates kernel memory until refused, then reports an error
  (func (export "hoard") (result i32)
    (loop $more (br_if $more (i64.ne (call $alloc (i64.const 1048576)) (i64.const 0))))
    (i32.const 3))
  (func (export "crash") (result i32) unreachable)
  (func $deep (export "deep") (result i32) (i32.add (call $deep) (i32.const 1)))
  ;; busy for input_length * 100000 iterations, then outputs "k"
  (func (export "busy") (result i32)
    (local $n i64)
    (local.set $n (i64.mul (call $input_length) (i64.const 100000)))
    (loop $again
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br_if $again (i64.gt_s (local.get $n) (i64.const 0))))
    (call $out (i32.const 107))
    (i32.const 0))
  ;; tries to fetch a URL nobody allowed
  (func (export "fetch") (result i32)
    (local $req i64) (local $i i32)
    (local.set $req (call $alloc (i64.const 45)))
    (loop $copy
      (call $store_u8 (i64.add (local.get $req) (i64.extend_i32_u (local.get $i)))
        (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $copy (i32.lt_u (local.get $i) (i32.const 45))))
    (drop (call $http_request (local.get $req) (i64.const 0)))
    (i32.const 0))
  ;; fails with a non-zero code and no message
  (func (export "refuse") (result i32) (i32.const 7))
)
