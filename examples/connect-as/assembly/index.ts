// modrun example plugin: a model, SQL, HTTP and Dgraph from AssemblyScript,
// through the helper module ./modrun.ts. Connections come from the manifest
// (see modrun.example.json); without them each function fails with a clear error.
import { Host } from "@extism/as-pdk";
import { dgraph, fail, http, jsonString, models, Result, sql } from "../../lib/modrun";

function output(s: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(s)));
}

function answer(r: Result): i32 {
  if (!r.ok) return fail(r.error);
  output(r.json);
  return 0;
}

// mood(text: String!): JSON -- the "sentiment" model (embedded: works offline, no key)
export function mood(): i32 {
  return answer(models.invoke("sentiment", jsonString(Host.inputString())));
}

// ask(prompt: String!): JSON -- the "assistant" model's chat completion
export function ask(): i32 {
  const prompt = Host.inputString();
  return answer(models.invoke("assistant",
    '{"messages":[{"role":"user","content":' + jsonString(prompt) + "}]}"));
}

// getNotes: JSON -- rows of the notes table ("notes-db" connection)
export function getNotes(): i32 {
  return answer(sql.query("notes-db", "SELECT id, body FROM notes ORDER BY id"));
}

// addNote(body: String!): JSON -- a Mutation inserting one row, bound parameter
export function addNote(): i32 {
  return answer(sql.execute("notes-db", "INSERT INTO notes (body) VALUES ($1)",
    "[" + jsonString(Host.inputString()) + "]"));
}

// fetchStatus(url: String!): Int! -- the HTTP status of a GET to an allowed URL
export function fetchStatus(): i32 {
  const res = http.fetch(Host.inputString());
  output(res.status.toString());
  return 0;
}

// graphPeople: JSON -- people in the "dgraph" connection
export function graphPeople(): i32 {
  return answer(dgraph.query("{ people(func: has(name)) { uid name } }"));
}
