// modrun host functions for AssemblyScript plugins (use with @extism/as-pdk).
// The examples import it as ../../lib/modrun; copy it into your own plugin.
// See docs/host-functions.md.
import { Memory } from "@extism/as-pdk";
import { error_set, http_request, length } from "@extism/as-pdk/lib/env";

@external("extism:host/env", "http_status_code")
declare function http_status_code(): i32;
@external("extism:host/user", "model_invoke")
declare function model_invoke(request: u64): u64;
@external("extism:host/user", "model_stream_open")
declare function model_stream_open(request: u64): u64;
@external("extism:host/user", "model_stream_next")
declare function model_stream_next(request: u64): u64;
@external("extism:host/user", "model_stream_close")
declare function model_stream_close(request: u64): u64;
@external("extism:host/user", "output_chunk")
declare function output_chunk(block: u64): void;
@external("extism:host/user", "sql_query")
declare function sql_query(request: u64): u64;
@external("extism:host/user", "sql_execute")
declare function sql_execute(request: u64): u64;
@external("extism:host/user", "dgraph_query")
declare function dgraph_query(request: u64): u64;
@external("extism:host/user", "dgraph_mutate")
declare function dgraph_mutate(request: u64): u64;
@external("extism:host/user", "dgraph_alter")
declare function dgraph_alter(request: u64): u64;

/** What a modrun host function answered: `json` on success, `error` otherwise. */
export class Result {
  constructor(public ok: bool, public json: string, public error: string) {}
}

/** A JSON string literal for `s` (quotes included). Runs of plain characters
 * are copied as slices and joined once: no quadratic string growth. */
export function jsonString(s: string): string {
  const parts: string[] = ['"'];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c != 0x22 && c != 0x5c && c >= 0x20) continue;
    if (i > start) parts.push(s.substring(start, i));
    if (c == 0x22) parts.push('\\"');
    else if (c == 0x5c) parts.push("\\\\");
    else if (c == 0x0a) parts.push("\\n");
    else if (c == 0x0d) parts.push("\\r");
    else if (c == 0x09) parts.push("\\t");
    else parts.push("\\u00" + (c < 0x10 ? "0" : "") + c.toString(16));
    start = i + 1;
  }
  if (s.length > start) parts.push(s.substring(start));
  parts.push('"');
  return parts.join("");
}

/** The text of a JSON string literal (the inverse of jsonString), likewise in slices. */
export function jsonUnquote(literal: string): string {
  const parts: string[] = [];
  const end = literal.length - 1;
  let start = 1;
  let i = 1;
  while (i < end) {
    if (literal.charCodeAt(i) != 0x5c) {
      i++;
      continue;
    }
    if (i > start) parts.push(literal.substring(start, i));
    const c = literal.charAt(i + 1);
    if (c == "n") parts.push("\n");
    else if (c == "t") parts.push("\t");
    else if (c == "r") parts.push("\r");
    else if (c == "b") parts.push("\b");
    else if (c == "f") parts.push("\f");
    else if (c == "u") {
      parts.push(String.fromCharCode(I32.parseInt(literal.substr(i + 2, 4), 16)));
      i += 4;
    } else parts.push(c);
    i += 2;
    start = i;
  }
  if (end > start) parts.push(literal.substring(start, end));
  return parts.join("");
}

/** The raw JSON text of a top-level field of a JSON object ("" when absent),
 * e.g. jsonField('{"a":[1,{"b":"]"}]}', "a") is '[1,{"b":"]"}]'. */
export function jsonField(doc: string, key: string): string {
  const wanted = jsonString(key);
  let depth = 0;
  let i = 0;
  while (i < doc.length) {
    const c = doc.charAt(i);
    if (c == '"') {
      const end = stringEnd(doc, i);
      if (depth == 1 && doc.substring(i, end) == wanted) {
        let j = end;
        while (j < doc.length && (doc.charAt(j) == " " || doc.charAt(j) == ":" || doc.charAt(j) == "\n")) j++;
        return doc.substring(j, valueEnd(doc, j));
      }
      i = end;
      continue;
    }
    if (c == "{" || c == "[") depth++;
    else if (c == "}" || c == "]") depth--;
    i++;
  }
  return "";
}

function stringEnd(doc: string, start: i32): i32 {
  let i = start + 1;
  while (i < doc.length) {
    const c = doc.charAt(i);
    if (c == "\\") i += 2;
    else if (c == '"') return i + 1;
    else i++;
  }
  return doc.length;
}

function valueEnd(doc: string, start: i32): i32 {
  let depth = 0;
  let i = start;
  while (i < doc.length) {
    const c = doc.charAt(i);
    if (c == '"') {
      i = stringEnd(doc, i);
      if (depth == 0) return i;
      continue;
    }
    if (c == "{" || c == "[") depth++;
    else if (c == "}" || c == "]") {
      if (depth == 0) return i;
      depth--;
      if (depth == 0) return i + 1;
    } else if (depth == 0 && c == ",") return i;
    i++;
  }
  return i;
}

function read(handle: u64): string {
  if (handle == 0) return "";
  const block = new Memory(handle, length(handle));
  const text = block.toString();
  block.free();
  return text;
}

function call(fn: (request: u64) => u64, request: string): Result {
  const block = Memory.allocateString(request);
  const answer = read(fn(block.offset));
  block.free(); // a long stream makes many calls: kernel memory must not grow with them
  // the envelope is compact JSON: {"result":<json>} or {"error":"..."}
  if (answer.startsWith('{"result":')) {
    return new Result(true, answer.substring(10, answer.length - 1), "");
  }
  if (answer.startsWith('{"error":')) {
    return new Result(false, "", jsonUnquote(answer.substring(9, answer.length - 1)));
  }
  return new Result(false, "", "unexpected answer: " + answer);
}

/** A model answer read chunk by chunk (see models.stream). */
export class ModelStream {
  /** The text of the last chunk next() read. */
  text: string = "";
  /** Why the stream failed, when next() returned false and this is not empty. */
  error: string = "";
  /** The usage the model reported at the end (JSON), if it did. */
  usageJson: string = "null";
  private open: bool = true;

  constructor(private id: i64) {}

  /** Waits for the next chunk: true with `text` set, false at the end or on `error`. */
  next(): bool {
    if (!this.open) return false;
    const r = call(model_stream_next, '{"stream":' + this.id.toString() + "}");
    if (!r.ok) {
      this.error = r.error;
      this.open = false;
      return false;
    }
    // the result is {"text":"..."} or {"done":true,"usage":...}
    if (r.json.startsWith('{"text":')) {
      this.text = jsonUnquote(r.json.substring(8, r.json.length - 1));
      return true;
    }
    const usage = r.json.indexOf('"usage":');
    if (usage >= 0) this.usageJson = r.json.substring(usage + 8, r.json.length - 1);
    this.open = false;
    return false;
  }

  /** Stops reading early; the upstream request is closed. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    call(model_stream_close, '{"stream":' + this.id.toString() + "}");
  }
}

/** What models.stream gives: the stream, or why it could not start. */
export class StreamResult {
  constructor(public stream: ModelStream | null, public error: string) {}
}

export namespace models {
  /** Invoke a manifest model with a JSON input; the result is its JSON answer. */
  export function invoke(model: string, inputJson: string): Result {
    return call(model_invoke, '{"model":' + jsonString(model) + ',"input":' + inputJson + "}");
  }
  /** Start a manifest model's answer as a stream (OpenAI-compatible models
   * stream token by token; others answer whole, as one chunk). */
  export function stream(model: string, inputJson: string): StreamResult {
    const r = call(model_stream_open, '{"model":' + jsonString(model) + ',"input":' + inputJson + "}");
    if (!r.ok) return new StreamResult(null, r.error);
    // {"stream":N}
    return new StreamResult(new ModelStream(I64.parseInt(r.json.substring(10, r.json.length - 1))), "");
  }
}

/** Send `text` to the caller now, as the next piece of the output. */
export function outputChunk(text: string): void {
  const block = Memory.allocateString(text);
  output_chunk(block.offset);
  block.free();
}

export namespace sql {
  /** Rows of a query as a JSON array of objects. Placeholders: $1 (PostgreSQL), ? (MySQL). */
  export function query(connection: string, statement: string, paramsJson: string = "[]"): Result {
    return call(sql_query, request(connection, statement, paramsJson));
  }
  /** {"rowsAffected": n} for INSERT, UPDATE, DELETE... */
  export function execute(connection: string, statement: string, paramsJson: string = "[]"): Result {
    return call(sql_execute, request(connection, statement, paramsJson));
  }
  function request(connection: string, statement: string, paramsJson: string): string {
    return '{"connection":' + jsonString(connection) + ',"statement":' + jsonString(statement) +
      ',"params":' + paramsJson + "}";
  }
}

export namespace dgraph {
  export function query(dql: string, variablesJson: string = "{}", connection: string = "dgraph"): Result {
    return call(dgraph_query, '{"connection":' + jsonString(connection) + ',"query":' + jsonString(dql) +
      ',"variables":' + variablesJson + "}");
  }
  export function mutate(setJson: string, connection: string = "dgraph"): Result {
    return call(dgraph_mutate, '{"connection":' + jsonString(connection) + ',"set":' + setJson + "}");
  }
  export function alter(schema: string, connection: string = "dgraph"): Result {
    return call(dgraph_alter, '{"connection":' + jsonString(connection) + ',"schema":' + jsonString(schema) + "}");
  }
}

export class Response {
  constructor(public status: i32, public body: string) {}
}

export namespace http {
  /** An HTTP request to a URL a manifest connection allows. */
  export function fetch(url: string, method: string = "GET", body: string = "", headersJson: string = "{}"): Response {
    const req = '{"url":' + jsonString(url) + ',"method":' + jsonString(method) + ',"headers":' + headersJson + "}";
    const bodyHandle: u64 = body.length == 0 ? 0 : Memory.allocateString(body).offset;
    const handle = http_request(Memory.allocateString(req).offset, bodyHandle);
    return new Response(http_status_code(), read(handle));
  }
}

/** Report `message` as the call's error (return its result from the export). */
export function fail(message: string): i32 {
  error_set(Memory.allocateString(message).offset);
  return 1;
}

// AssemblyScript's abort (see asconfig.json): the message becomes the call's error.
export function onAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  fail("abort: " + (message === null ? "?" : message) + " at " + (fileName === null ? "?" : fileName) +
    ":" + line.toString() + ":" + column.toString());
  unreachable();
}
