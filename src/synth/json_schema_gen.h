// Seeded JSON values that validate against a JSON Schema: the dummy
// engine's structured output (response_format json_schema) and tool-call
// arguments (a tool's "parameters").
//
// Keywords honoured (anything else is ignored, so a schema using others
// may get values it would reject):
//   type (one or a list; a list picks one), properties, required,
//   additionalProperties (no key beyond "properties" is made unless
//   "required" or minProperties asks for one), minProperties, enum, const,
//   items (a schema, or a list as draft 4's tuples), prefixItems,
//   minItems/maxItems, uniqueItems (for values that can differ), minimum/
//   maximum, exclusiveMinimum/exclusiveMaximum (numbers, or draft 4's
//   booleans), multipleOf, minLength/maxLength, format (date-time, date,
//   time, email, uri, uuid, ipv4, hostname), anyOf/oneOf (one branch is
//   picked), allOf (object branches merged), $ref to "#", "#/$defs/NAME",
//   "#/definitions/NAME" or any local JSON pointer, nullable (OpenAPI 3.0),
//   and the booleans true (anything) and false (nothing: null is made).
// "pattern" is not: strings are the engine's words.
//
// Values are written with ", " and ": " between items (as Python's
// json.dumps does, and so vLLM's tool-call arguments), so the engine's
// tokenizer splits them into several tokens to stream.
//
// Thread-safety: a JsonSchemaGenerator is immutable; Generate may run on
// many threads at once with their own RNGs.
#ifndef REWIND_SRC_SYNTH_JSON_SCHEMA_GEN_H_
#define REWIND_SRC_SYNTH_JSON_SCHEMA_GEN_H_

#include <memory>
#include <random>
#include <string>

#include "rewind/status.h"

namespace rwd {

class JsonSchemaGenerator {
 public:
  // Deepest schema nesting accepted, and deepest value generated (beyond
  // it, choices stay minimal: optional members left out, arrays at
  // minItems, null where allowed).
  static constexpr int kMaxSchemaDepth = 64;

  // "schema_json" is a JSON Schema document (an object or a boolean).
  // InvalidArgument when it is not JSON, nests deeper than
  // kMaxSchemaDepth, or holds a $ref that is not a local pointer into it.
  static Result<JsonSchemaGenerator> Create(const std::string& schema_json);

  // One value, as JSON text.
  std::string Generate(std::mt19937_64& rng) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_JSON_SCHEMA_GEN_H_
