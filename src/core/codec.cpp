#include "flux/codec.hpp"

namespace flux {

bool compatible(const TypeInfo& produced, const TypeInfo& expected) noexcept {
  if (!expected.kind || !produced.kind) return true;  // a flux::Value on either side
  Kind out = *produced.kind, in = *expected.kind;
  if (out == Kind::null) return in == Kind::null || expected.nullable;
  if (out == Kind::int64 && in == Kind::float64) return true;  // widening, as Value::as_float
  if (out != in) return false;
  if (produced.is_struct && expected.is_struct) return produced.name == expected.name;
  if (produced.is_struct || expected.is_struct) return true;  // map <-> struct: checked when run
  if (in == Kind::list && !produced.branches.empty()) {
    // A parallel's outputs feeding one list parameter: each must fit the element type.
    if (!expected.element) return true;
    for (const TypeInfo& b : produced.branches) {
      if (!compatible(b, *expected.element)) return false;
    }
    return true;
  }
  if (produced.element && expected.element) return compatible(*produced.element, *expected.element);
  return true;
}

namespace detail {
void rethrow_nested(const TypeError& e, const std::string& where) {
  throw TypeError(where + ": " + e.what());
}
}  // namespace detail

}  // namespace flux
