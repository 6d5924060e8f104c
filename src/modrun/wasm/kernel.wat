;; modrun's Extism memory kernel.
;;
;; Implements the memory half of the Extism plugin ABI (module `extism:host/env`):
;; a separate linear memory that holds the call's input, output, error and every
;; block the guest or host allocates to pass bytes across the boundary. It is
;; linked into each plugin instance's store, so guest <-> kernel calls stay inside
;; WebAssembly; the Python host touches this memory only in bulk.
;;
;; Layout of this memory (all values little-endian u64):
;;
;;   0   null (offset 0 means "no block")
;;   8   input offset        16  input length
;;   24  output offset       32  output length
;;   40  error block handle  48  heap top (first free byte)
;;   56  free-list head      64  first block
;;
;; A block is a 16-byte header followed by its data; a handle points at the data:
;;
;;   handle-16  capacity (bytes, multiple of 8; bit 0 set = free)
;;   handle-8   length requested by alloc
;;
;; Freed blocks form a singly linked list through their first data word. Freeing
;; the topmost block lowers the heap top instead. `reset` forgets everything.
;; The host reads the control words directly; see modrun/wasm/kernel.py.
(module
  (memory (export "memory") 1)
  (data (i32.const 48) "\40\00\00\00\00\00\00\00")

  (func $word (param $at i32) (result i64) (i64.load (local.get $at)))

  ;; Make [0, end) addressable; grows by at least half the current size so a
  ;; stream of small allocations does not grow page by page.
  (func $ensure (param $end i64) (result i32)
    (local $have i64) (local $pages i32) (local $extra i32)
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.le_u (local.get $end) (local.get $have)) (then (return (i32.const 1))))
    (if (i64.gt_u (local.get $end) (i64.const 0xFFFF0000)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.wrap_i64
        (i64.shr_u
          (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 65535))
          (i64.const 16))))
    (local.set $extra (i32.shr_u (memory.size) (i32.const 1)))
    (if (i32.gt_u (local.get $extra) (local.get $pages))
      (then
        (if (i32.ne (memory.grow (local.get $extra)) (i32.const -1))
          (then (return (i32.const 1))))))
    (i32.ne (memory.grow (local.get $pages)) (i32.const -1)))

  (func $alloc (export "alloc") (param $n i64) (result i64)
    (local $cap i64) (local $h i64) (local $prev i64) (local $bcap i64) (local $top i64)
    (if (i64.eqz (local.get $n)) (then (return (i64.const 0))))
    (local.set $cap (i64.and (i64.add (local.get $n) (i64.const 7)) (i64.const -8)))
    ;; first fit over the free list, refusing blocks more than 4x too large
    (local.set $h (call $word (i32.const 56)))
    (block $done
      (loop $scan
        (br_if $done (i64.eqz (local.get $h)))
        (local.set $bcap
          (i64.and (i64.load (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 16)))) (i64.const -8)))
        (if (i32.and
              (i64.ge_u (local.get $bcap) (local.get $cap))
              (i64.le_u (local.get $bcap) (i64.add (i64.shl (local.get $cap) (i64.const 2)) (i64.const 64))))
          (then
            (if (i64.eqz (local.get $prev))
              (then (i64.store (i32.const 56) (i64.load (i32.wrap_i64 (local.get $h)))))
              (else (i64.store (i32.wrap_i64 (local.get $prev)) (i64.load (i32.wrap_i64 (local.get $h))))))
            (i64.store (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 16))) (local.get $bcap))
            (i64.store (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 8))) (local.get $n))
            (return (local.get $h))))
        (local.set $prev (local.get $h))
        (local.set $h (i64.load (i32.wrap_i64 (local.get $h))))
        (br $scan)))
    ;; bump
    (local.set $top (call $word (i32.const 48)))
    (local.set $h (i64.add (local.get $top) (i64.const 16)))
    (if (i32.eqz (call $ensure (i64.add (local.get $h) (local.get $cap))))
      (then (return (i64.const 0))))
    (i64.store (i32.wrap_i64 (local.get $top)) (local.get $cap))
    (i64.store (i32.wrap_i64 (i64.add (local.get $top) (i64.const 8))) (local.get $n))
    (i64.store (i32.const 48) (i64.add (local.get $h) (local.get $cap)))
    (local.get $h))

  ;; A handle is plausible when it lies inside the heap and its block is in use.
  (func $live (param $h i64) (result i32)
    (if (i64.lt_u (local.get $h) (i64.const 80)) (then (return (i32.const 0))))
    (if (i64.gt_u (local.get $h) (call $word (i32.const 48))) (then (return (i32.const 0))))
    (i64.eqz
      (i64.and (i64.load (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 16)))) (i64.const 1))))

  (func (export "free") (param $h i64)
    (local $cap i64)
    (if (i32.eqz (call $live (local.get $h))) (then (return)))
    (local.set $cap (i64.load (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 16)))))
    (if (i64.eq (i64.add (local.get $h) (local.get $cap)) (call $word (i32.const 48)))
      (then
        (i64.store (i32.const 48) (i64.sub (local.get $h) (i64.const 16)))
        (return)))
    (i64.store (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 16)))
      (i64.or (local.get $cap) (i64.const 1)))
    (i64.store (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 8))) (i64.const 0))
    (i64.store (i32.wrap_i64 (local.get $h)) (call $word (i32.const 56)))
    (i64.store (i32.const 56) (local.get $h)))

  (func (export "length") (param $h i64) (result i64)
    (if (i32.eqz (call $live (local.get $h))) (then (return (i64.const 0))))
    (i64.load (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 8)))))

  (func (export "length_unsafe") (param $h i64) (result i64)
    (i64.load (i32.wrap_i64 (i64.sub (local.get $h) (i64.const 8)))))

  (func (export "load_u8") (param $at i64) (result i32)
    (i32.load8_u (i32.wrap_i64 (local.get $at))))
  (func (export "load_u64") (param $at i64) (result i64)
    (i64.load (i32.wrap_i64 (local.get $at))))
  (func (export "store_u8") (param $at i64) (param $v i32)
    (i32.store8 (i32.wrap_i64 (local.get $at)) (local.get $v)))
  (func (export "store_u64") (param $at i64) (param $v i64)
    (i64.store (i32.wrap_i64 (local.get $at)) (local.get $v)))

  (func $input_set (export "input_set") (param $at i64) (param $n i64)
    (i64.store (i32.const 8) (local.get $at))
    (i64.store (i32.const 16) (local.get $n)))
  (func (export "input_offset") (result i64) (call $word (i32.const 8)))
  (func (export "input_length") (result i64) (call $word (i32.const 16)))
  ;; the two hottest kernel functions (PDKs read input 8 bytes per call): no helper calls
  (func (export "input_load_u8") (param $i i64) (result i32)
    (i32.load8_u (i32.add (i32.wrap_i64 (i64.load (i32.const 8))) (i32.wrap_i64 (local.get $i)))))
  (func (export "input_load_u64") (param $i i64) (result i64)
    (i64.load (i32.add (i32.wrap_i64 (i64.load (i32.const 8))) (i32.wrap_i64 (local.get $i)))))

  (func (export "output_set") (param $at i64) (param $n i64)
    (i64.store (i32.const 24) (local.get $at))
    (i64.store (i32.const 32) (local.get $n)))
  (func (export "output_offset") (result i64) (call $word (i32.const 24)))
  (func (export "output_length") (result i64) (call $word (i32.const 32)))

  (func (export "error_set") (param $h i64) (i64.store (i32.const 40) (local.get $h)))
  (func (export "error_get") (result i64) (call $word (i32.const 40)))

  (func $reset (export "reset")
    (memory.fill (i32.const 8) (i32.const 0) (i32.const 56))
    (i64.store (i32.const 48) (i64.const 64)))

  (func (export "memory_bytes") (result i64)
    (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))

  ;; Host entry point, one call per plugin call: forget the previous call's
  ;; blocks and reserve room for `n` input bytes. Returns the input offset
  ;; (0 for empty input) or -1 when memory cannot grow that far.
  (func (export "modrun_begin") (param $n i64) (result i64)
    (local $h i64)
    (call $reset)
    (if (i64.eqz (local.get $n)) (then (return (i64.const 0))))
    (local.set $h (call $alloc (local.get $n)))
    (if (i64.eqz (local.get $h)) (then (return (i64.const -1))))
    (call $input_set (local.get $h) (local.get $n))
    (local.get $h))
)
