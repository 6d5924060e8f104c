// An AssemblyScript compiler transform that writes the Modus ABI's metadata
// (custom sections `modus_metadata_version` and `modus_metadata`) from the
// entry file's exported functions, the host functions it imports and the
// classes they use: names, parameter types and defaults, results, doc
// comments, and each type's runtime class id and fields. Written for modrun's
// tests from the ABI's documented format (docs/modus.md); no Modus code.
import { Transform } from "assemblyscript/transform";

const FUNCTION_PROTOTYPE = 4;
const PROPERTY = 11;
const USER_ENTRY = 1;
const PRIMITIVES = new Set(["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "bool", "void", "isize", "usize"]);

function docsBefore(node) {
  const text = node.range.source.text.slice(0, node.range.start).trimEnd();
  if (!text.endsWith("*/")) return undefined;
  const start = text.lastIndexOf("/**");
  if (start < 0) return undefined;
  const lines = text.slice(start + 3, -2).split("\n").map((l) => l.replace(/^\s*\*?\s?/, "").trim());
  const kept = lines.filter((l) => l && !l.startsWith("@"));
  return kept.length ? { lines: kept } : undefined; // the shape Modus's metadata gives docs
}

function literal(node) {
  if (!node) return undefined;
  const text = node.range.toString().trim();
  if (text === "null") return null;
  if (text === "true" || text === "false") return text === "true";
  if (/^-?[0-9.]+(e-?[0-9]+)?$/i.test(text)) return Number(text);
  if (/^(["']).*\1$/.test(text)) return text.slice(1, -1);
  return undefined;
}

export default class ModusMetadata extends Transform {
  afterCompile(module) {
    const program = this.program;
    const types = {};
    const fnExports = {};
    const fnImports = {};

    const noteType = (type) => {
      const name = type.toString().replace(/ \| null$/, "");
      if (PRIMITIVES.has(name) || types[name]) return name;
      const cls = type.getClass();
      if (!cls) return name;
      const entry = { id: cls.id };
      types[name] = entry;
      const fields = [];
      if (!name.startsWith("~lib/")) {
        for (const [key, member] of program.instancesByName) {
          if (key.startsWith(`${cls.internalName}#`) && member.kind === PROPERTY && member.isField) {
            fields.push({ name: member.name, type: noteType(member.type) && member.type.toString(), offset: member.memoryOffset });
            const docs = docsBefore(member.declaration);
            if (docs) fields[fields.length - 1].docs = docs;
          }
        }
        const classDocs = docsBefore(cls.prototype.declaration);
        if (classDocs) entry.docs = classDocs;
        fields.sort((a, b) => a.offset - b.offset);
        entry.fields = fields.map(({ offset, ...field }) => field);
      }
      for (const argument of type.classReference?.typeArguments ?? []) noteType(argument);
      if (cls.base && !cls.base.internalName.startsWith("~lib/object")) noteType(cls.base.type);
      return name;
    };

    const describe = (fn, declaration) => {
      const signature = fn.signature;
      const parameters = signature.parameterTypes.map((type, i) => {
        noteType(type);
        const parameter = { name: fn.getParameterName(i), type: type.toString() };
        const node = declaration?.signature?.parameters?.[i];
        if (node?.initializer) parameter.default = literal(node.initializer);
        return parameter;
      });
      const info = { parameters };
      if (signature.returnType.toString() !== "void") {
        noteType(signature.returnType);
        info.results = [{ type: signature.returnType.toString() }];
      }
      const docs = declaration ? docsBefore(declaration) : undefined;
      if (docs) info.docs = docs;
      return info;
    };

    for (const file of program.filesByName.values()) {
      if (file.source.sourceKind !== USER_ENTRY) continue;
      for (const [name, element] of file.exports ?? []) {
        if (element.kind !== FUNCTION_PROTOTYPE) continue;
        for (const fn of element.instances?.values() ?? []) fnExports[name] = describe(fn, element.declaration);
      }
    }
    for (const fn of program.instancesByName.values()) {
      const decorator = fn.prototype?.declaration?.decorators?.find((d) => d.name.range.toString().replace("@", "") === "external");
      if (!decorator || !fn.signature) continue;
      const [moduleName, fnName] = decorator.args.map((a) => literal(a));
      if (moduleName !== "env") fnImports[`${moduleName}.${fnName}`] = describe(fn, null);
    }
    const metadata = {
      plugin: "modus-test",
      sdk: "modrun-test-transform@1",
      buildId: String(Date.now()),
      buildTs: new Date().toISOString(),
      fnExports,
      fnImports,
      types,
    };
    module.addCustomSection("modus_metadata_version", new Uint8Array([2]));
    module.addCustomSection("modus_metadata", new TextEncoder().encode(JSON.stringify(metadata)));
  }
}
