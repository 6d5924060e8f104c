// modrun example plugin: a chat model's answer streamed through a function,
// token by token, changed on the way. Call it with `Accept: text/event-stream`
// (or `modrun call --stream`) to see the tokens as they come; without it the
// answer arrives whole. The "assistant" model comes from the manifest (see
// modrun.example.json); OpenAI-compatible models stream, others answer whole.
import { Host } from "@extism/as-pdk";
import { fail, jsonField, jsonString, models, outputChunk } from "../../lib/modrun";

function messages(system: string, prompt: string): string {
  return '{"messages":[{"role":"system","content":' + jsonString(system) +
    '},{"role":"user","content":' + jsonString(prompt) + "}]}";
}

/** Streams the model's answer to `request` through `change`, one chunk out per chunk in. */
function relayRequest(request: string, change: (text: string) => string): i32 {
  const started = models.stream("assistant", request);
  const stream = started.stream;
  if (stream == null) return fail(started.error);
  while (stream.next()) {
    const text = change(stream.text);
    if (text.length > 0) outputChunk(text);
  }
  if (stream.error.length > 0) return fail(stream.error);
  return 0;
}

function relay(system: string, change: (text: string) => string): i32 {
  return relayRequest(messages(system, Host.inputString()), change);
}

function same(text: string): string {
  return text;
}

function upper(text: string): string {
  return text.toUpperCase();
}

// Words no answer may contain, replaced on the way out. A word split across
// two chunks gets through: a real filter would keep a tail of each chunk.
const BANNED = ["darn", "heck"];

function clean(text: string): string {
  let out = text;
  for (let i = 0; i < BANNED.length; i++) out = out.replaceAll(BANNED[i], "****");
  return out;
}

// chat(prompt: String!): String! -- the assistant's answer as it comes
export function chat(): i32 {
  return relay("You are a helpful assistant.", same);
}

// chatUpper(prompt: String!): String! -- the answer in capitals, token by token
export function chatUpper(): i32 {
  return relay("You are a helpful assistant.", upper);
}

// chatPolite(prompt: String!): String! -- the answer with banned words masked
export function chatPolite(): i32 {
  return relay("You are a helpful assistant.", clean);
}

// politeAssistant: an OpenAI chat handler (schema "chat": true). Its input is
// the chat request a client sent to POST /v1/chat/completions; it puts its
// own system message first, asks the "assistant" model, and masks banned
// words in the answer as it streams.
export function politeAssistant(): i32 {
  const asked = jsonField(Host.inputString(), "messages");
  if (!asked.startsWith("[")) return fail("the request has no messages");
  const system = '{"role":"system","content":"Be polite."}';
  const rest = asked.substring(1).trimStart();
  const all = "[" + system + (rest.startsWith("]") ? "" : ",") + rest;
  return relayRequest('{"messages":' + all + "}", clean);
}
