// A Modus-ABI plugin for modrun's tests: one function per kind of value the
// Modus AssemblyScript SDK passes, and the host functions it imports. Built
// with --exportRuntime (__new, __pin, __unpin); metadata.mjs writes the
// modus_metadata custom section from these signatures.

@external("modus_system", "logMessage")
declare function logMessage(level: string, message: string): void;

@external("modus_system", "getTimeInZone")
declare function getTimeInZone(tz: string | null): string | null;

@external("modus_models", "invokeModel")
declare function invokeModel(modelName: string, input: string): string | null;

@external("modus_models", "getModelInfo")
declare function getModelInfo(modelName: string): ModelInfo;

/** What the host knows of a model. */
export class ModelInfo {
  name!: string;
  fullName!: string;
}

/** A person, with optional email. */
export class Person {
  /** Their full name. */
  name!: string;
  age: i32 = 0;
  email: string | null = null;
  tags: string[] = [];
}

/** Adds two numbers. */
export function add(a: i32, b: i32): i32 {
  return a + b;
}

export function add64(a: i64, b: i64): i64 {
  return a + b;
}

export function addUnsigned(a: u32, b: u8): u64 {
  return <u64>a + <u64>b;
}

/** Multiplies x by factor (2 unless given). */
export function scale(x: f64, factor: f32 = 2.0): f64 {
  return x * <f64>factor;
}

export function isEven(n: i32): bool {
  return n % 2 == 0;
}

/** Says hello, to the world unless a name is given. */
export function sayHello(name: string | null = null): string {
  return "Hello, " + (name == null ? "World" : name) + "!";
}

export function reverseBytes(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[data.length - 1 - i];
  return out;
}

export function bufferLength(buf: ArrayBuffer): i32 {
  return buf.byteLength;
}

export function doubled(values: Float64Array): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * 2;
  return out;
}

export function sum(values: i32[]): i64 {
  let total: i64 = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total;
}

export function words(text: string): string[] {
  return text.split(" ");
}

export function maybeWords(text: string): (string | null)[] {
  const out = new Array<string | null>();
  const parts = text.split(" ");
  for (let i = 0; i < parts.length; i++) out.push(parts[i] == "-" ? null : parts[i]);
  return out;
}

export function makePeople(): Person[] {
  const ada = new Person();
  ada.name = "Ada";
  ada.age = 36;
  ada.email = "ada@example.com";
  ada.tags = ["math", "engines"];
  const alan = new Person();
  alan.name = "Alan";
  alan.age = 41;
  const grace = new Person();
  grace.name = "Grace";
  grace.age = 85;
  grace.tags = ["navy"];
  return [ada, alan, grace];
}

/** The oldest person, or null for nobody. */
export function oldest(people: Person[]): Person | null {
  let found: Person | null = null;
  for (let i = 0; i < people.length; i++) {
    if (found == null || people[i].age > found.age) found = people[i];
  }
  return found;
}

export function describe(person: Person): string {
  const email = person.email;
  return person.name + " (" + person.age.toString() + ", " + (email == null ? "no email" : email) + ", " +
    person.tags.join("+") + ")";
}

export function countWords(text: string): Map<string, i32> {
  const counts = new Map<string, i32>();
  const parts = text.split(" ");
  for (let i = 0; i < parts.length; i++) {
    const w = parts[i];
    counts.set(w, counts.has(w) ? counts.get(w) + 1 : 1);
  }
  return counts;
}

/** Looks keys up in a map the host wrote (so the host must hash them as AssemblyScript does). */
export function lookup(m: Map<string, string>, keys: string[]): string {
  const out = new Array<string>();
  for (let i = 0; i < keys.length; i++) out.push(m.has(keys[i]) ? m.get(keys[i]) : "?");
  return out.join(",");
}

export function squares(m: Map<i32, f64>): Map<i32, f64> {
  const out = new Map<i32, f64>();
  const keys = m.keys();
  for (let i = 0; i < keys.length; i++) out.set(keys[i], m.get(keys[i]) * m.get(keys[i]));
  return out;
}

export function nextDay(d: Date): Date {
  return new Date(d.getTime() + 86400000);
}

export function loudly(message: string): string {
  logMessage("info", "shouting " + message);
  logMessage("warning", "it is loud");
  return message.toUpperCase();
}

export function fail(message: string): string {
  throw new Error(message);
}

export function timeIn(tz: string): string | null {
  return getTimeInZone(tz);
}

@external("modus_system", "getTimeZoneData")
declare function getTimeZoneData(tz: string | null, format: string | null): ArrayBuffer | null;

/** A zone's data: "<magic> <byte count>", or "none". */
export function zoneData(tz: string, format: string): string {
  const data = getTimeZoneData(tz, format);
  if (data == null) return "none";
  return String.UTF8.decode(data.slice(0, 4)) + " " + data.byteLength.toString();
}

export function ask(model: string, input: string): string | null {
  return invokeModel(model, input);
}

export function modelName(model: string): string {
  const info = getModelInfo(model);
  return info.name + "=" + info.fullName;
}

export function nothing(): void {}

/** Never returns (for the time limit). */
export function spin(n: i32): i32 {
  while (n >= 0) n = (n + 1) & 0xff;
  return n;
}

@external("modus_secrets", "getSecretValue")
declare function getSecretValue(name: string): string;

export function secret(name: string): string {
  return getSecretValue(name);
}

// The HTTP client's classes, with the fields (and order) of the Modus SDK's.
export class Header {
  name!: string;
  values!: string[];
}

export class Headers {
  data: Map<string, Header | null> = new Map<string, Header | null>();
}

export class Request {
  url!: string;
  method!: string;
  headers!: Headers;
  body!: ArrayBuffer;
}

export class Response {
  status: u16 = 0;
  statusText: string = "";
  headers: Headers = new Headers();
  body: ArrayBuffer = new ArrayBuffer(0);
}

@external("modus_http_client", "fetch")
declare function hostFetch(request: Request): Response | null;

/** POSTs text to a URL with one header; answers "status statusText: body (content-type)". */
export function post(url: string, text: string, headerName: string, headerValue: string): string {
  const request = new Request();
  request.url = url;
  request.method = "POST";
  request.headers = new Headers();
  const header = new Header();
  header.name = headerName;
  header.values = [headerValue];
  request.headers.data.set(headerName.toLowerCase(), header);
  request.body = String.UTF8.encode(text);
  const response = hostFetch(request);
  if (response == null) return "no response";
  const type = response.headers.data.has("content-type") ? response.headers.data.get("content-type")!.values[0] : "?";
  return response.status.toString() + " " + response.statusText + ": " + String.UTF8.decode(response.body) + " (" + type + ")";
}

class HostQueryResponse {
  error!: string | null;
  resultJson!: string | null;
  rowsAffected!: u32;
  lastInsertId!: u64;
}

@external("modus_sql_client", "executeQuery")
declare function hostExecuteQuery(
  connection: string,
  dbType: string,
  statement: string,
  paramsJson: string,
): HostQueryResponse;

/** Runs a statement on a SQL connection: "rows affected, rows as JSON", or "error: ...". */
export function sql(connection: string, dbType: string, statement: string, paramsJson: string): string {
  const r = hostExecuteQuery(connection, dbType, statement, paramsJson);
  const error = r.error;
  if (error != null) return "error: " + error;
  const rows = r.resultJson;
  return r.rowsAffected.toString() + " " + (rows == null ? "-" : rows);
}

@external("modus_graphql_client", "executeQuery")
declare function graphqlQuery(connection: string, statement: string, variables: string): string;

export function gql(connection: string, statement: string, variables: string): string {
  return graphqlQuery(connection, statement, variables);
}

/** Logs a string of n characters (its memory grows first) and returns its length. */
export function bigLog(n: i32): i32 {
  const text = "x".repeat(n);
  logMessage("info", text);
  return text.length;
}

/** n rounds of arithmetic (to take as long as a test needs). */
export function busy(n: i32): i32 {
  let x: i32 = 1;
  for (let i = 0; i < n; i++) x = (x * 31 + i) ^ (x >>> 3);
  return x;
}
