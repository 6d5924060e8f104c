// modrun host functions for AssemblyScript plugins (use with @extism/as-pdk).
// Copy this file into your plugin. See docs/host-functions.md.
import { Memory } from "@extism/as-pdk";
import { error_set, http_request, length } from "@extism/as-pdk/lib/env";

@external("extism:host/env", "http_status_code")
declare function http_status_code(): i32;
@external("extism:host/user", "model_invoke")
declare function model_invoke(request: u64): u64;
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

/** A JSON string literal for `s` (quotes included). */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

/** The text of a JSON string literal (the inverse of jsonString). */
export function jsonUnquote(literal: string): string {
  let out = "";
  for (let i = 1; i < literal.length - 1; i++) {
    let c = literal.charAt(i);
    if (c == "\\") {
      i++;
      c = literal.charAt(i);
      if (c == "n") out += "\n";
      else if (c == "t") out += "\t";
      else if (c == "r") out += "\r";
      else if (c == "b") out += "\b";
      else if (c == "f") out += "\f";
      else if (c == "u") {
        out += String.fromCharCode(I32.parseInt(literal.substr(i + 1, 4), 16));
        i += 4;
      } else out += c;
    } else out += c;
  }
  return out;
}

function read(handle: u64): string {
  return handle == 0 ? "" : new Memory(handle, length(handle)).toString();
}

function call(fn: (request: u64) => u64, request: string): Result {
  const answer = read(fn(Memory.allocateString(request).offset));
  // the envelope is compact JSON: {"result":<json>} or {"error":"..."}
  if (answer.startsWith('{"result":')) {
    return new Result(true, answer.substring(10, answer.length - 1), "");
  }
  if (answer.startsWith('{"error":')) {
    return new Result(false, "", jsonUnquote(answer.substring(9, answer.length - 1)));
  }
  return new Result(false, "", "unexpected answer: " + answer);
}

export namespace models {
  /** Invoke a manifest model with a JSON input; the result is its JSON answer. */
  export function invoke(model: string, inputJson: string): Result {
    return call(model_invoke, '{"model":' + jsonString(model) + ',"input":' + inputJson + "}");
  }
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
