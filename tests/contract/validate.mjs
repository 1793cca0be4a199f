// Validates the OpenAPI document given as the only argument: the OpenAPI 3.1 schema, every
// $ref resolving, and unique operationIds (generated clients name their functions by them).
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
const api = await SwaggerParser.validate(file);
const seen = new Map();
const clashes = [];
for (const [path, item] of Object.entries(api.paths ?? {})) {
  for (const [method, op] of Object.entries(item)) {
    if (!op || typeof op !== "object" || !op.operationId) continue;
    const at = `${method.toUpperCase()} ${path}`;
    if (seen.has(op.operationId)) clashes.push(`${op.operationId}: ${seen.get(op.operationId)} and ${at}`);
    else seen.set(op.operationId, at);
  }
}
if (clashes.length) {
  console.error(`duplicate operationIds:\n  ${clashes.join("\n  ")}`);
  process.exit(1);
}
console.log(`${file}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths, ${seen.size} operations`);
