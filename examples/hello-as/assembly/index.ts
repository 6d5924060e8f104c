// modrun example plugin: AssemblyScript + the Extism PDK (@extism/as-pdk), unmodified.
// Function signatures for GraphQL/REST are declared in ../modrun.schema.json.
import { Config, Host, LogLevel, Memory, Var } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

// Called by AssemblyScript on a failed assertion or runtime error (see asconfig.json).
function onAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const text = "abort: " + (message === null ? "?" : message) + " at " +
    (fileName === null ? "?" : fileName) + ":" + line.toString() + ":" + column.toString();
  error_set(Memory.allocateString(text).offset);
  unreachable();
}

function fail(message: string): i32 {
  error_set(Memory.allocateString(message).offset);
  return 1;
}

function outputText(s: string): void {
  // Host.outputString sizes the output by UTF-16 length; encode first so
  // non-ASCII text is not cut short.
  Host.output(Uint8Array.wrap(String.UTF8.encode(s)));
}

function jsonString(s: string): string {
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

// greet(name: String!): String! -- uses Config "greeting" and logs.
export function greet(): i32 {
  const name = Host.inputString().trim();
  if (name.length == 0) {
    return fail("name must not be empty");
  }
  const configured = Config.get("greeting");
  const greeting = configured === null ? "Hello" : configured;
  Host.log(LogLevel.Info, "greeting " + name);
  outputText(greeting + ", " + name + "!");
  return 0;
}

// countVowels(text: String!): VowelCount!
export function countVowels(): i32 {
  const text = Host.inputString();
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i).toLowerCase();
    if (c == "a" || c == "e" || c == "i" || c == "o" || c == "u") count++;
  }
  outputText('{"text":' + jsonString(text) + ',"vowels":' + count.toString() +
    ',"length":' + text.length.toString() + "}");
  return 0;
}

// updateCounter: Int! -- a Mutation; the count lives in an Extism Var.
export function updateCounter(): i32 {
  const current = Var.getString("counter");
  const next = (current === null ? 0 : I32.parseInt(current)) + 1;
  Var.set("counter", Uint8Array.wrap(String.UTF8.encode(next.toString())));
  Host.log(LogLevel.Debug, "counter is now " + next.toString());
  outputText(next.toString());
  return 0;
}

// getCounter: Int! -- exposed in GraphQL as `counter`.
export function getCounter(): i32 {
  const current = Var.getString("counter");
  outputText(current === null ? "0" : current);
  return 0;
}

// shout: untyped (no schema entry), so it is shout(input: String): String.
export function shout(): i32 {
  outputText(Host.inputString().toUpperCase() + "!");
  return 0;
}

// checkedDivide(text: "a/b"): divides, and fails through an AssemblyScript
// assertion (-> onAbort -> Extism error) when b is zero.
export function checkedDivide(): i32 {
  const parts = Host.inputString().split("/");
  assert(parts.length == 2, "expected input like 10/2");
  const b = I32.parseInt(parts[1]);
  assert(b != 0, "division by zero");
  outputText((I32.parseInt(parts[0]) / b).toString());
  return 0;
}
