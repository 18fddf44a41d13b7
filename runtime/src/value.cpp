#include "flux/value.hpp"

#include <cstdio>

namespace flux {

const char* to_string(Kind kind) noexcept {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "bool";
    case Kind::int64:
      return "int64";
    case Kind::float64:
      return "float64";
    case Kind::string:
      return "string";
    case Kind::bytes:
      return "bytes";
    case Kind::list:
      return "list";
    case Kind::map:
      return "map";
  }
  return "unknown";
}

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::type_mismatch:
      return "type_mismatch";
    case Errc::node_failed:
      return "node_failed";
    case Errc::not_found:
      return "not_found";
    case Errc::storage:
      return "storage";
    case Errc::run_owned:
      return "run_owned";
  }
  return "unknown";
}

std::string describe_mismatch(std::string_view expected, const Value& actual) {
  std::string s = "expected ";
  s += expected;
  s += ", got ";
  s += to_string(actual.kind());
  if (!actual.is_null()) {
    s += ' ';
    s += actual.to_string(60);
  }
  return s;
}

void Value::throw_unsigned_overflow(std::uint64_t v) {
  throw TypeError("integer " + std::to_string(v) + " does not fit in int64");
}

namespace {
template <class T>
const T& get_or_throw(const std::variant<std::monostate, bool, std::int64_t, double, std::string,
                                         Bytes, Value::List, Value::Map>& v,
                      Kind expected, const Value& self) {
  if (auto* p = std::get_if<T>(&v)) return *p;
  throw TypeError(describe_mismatch(to_string(expected), self));
}

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void render(std::string& out, const Value& v, std::size_t max) {
  if (out.size() > max) return;
  switch (v.kind()) {
    case Kind::null:
      out += "null";
      break;
    case Kind::boolean:
      out += v.as_bool() ? "true" : "false";
      break;
    case Kind::int64:
      out += std::to_string(v.as_int());
      break;
    case Kind::float64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v.as_float());
      std::string s = buf;
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep floats recognisable
      out += s;
      break;
    }
    case Kind::string:
      append_escaped(out, v.as_string());
      break;
    case Kind::bytes: {
      static const char* hex = "0123456789abcdef";
      out += "b\"";
      for (std::byte b : v.as_bytes()) {
        out += hex[std::to_integer<unsigned>(b) >> 4];
        out += hex[std::to_integer<unsigned>(b) & 15];
        if (out.size() > max) break;
      }
      out += '"';
      break;
    }
    case Kind::list: {
      out += '[';
      bool first = true;
      for (const Value& x : v.as_list()) {
        if (!first) out += ", ";
        first = false;
        render(out, x, max);
        if (out.size() > max) return;
      }
      out += ']';
      break;
    }
    case Kind::map: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : v.as_map()) {
        if (!first) out += ", ";
        first = false;
        append_escaped(out, k);
        out += ": ";
        render(out, x, max);
        if (out.size() > max) return;
      }
      out += '}';
      break;
    }
  }
}
}  // namespace

bool Value::as_bool() const { return get_or_throw<bool>(v_, Kind::boolean, *this); }
std::int64_t Value::as_int() const { return get_or_throw<std::int64_t>(v_, Kind::int64, *this); }
double Value::as_float() const {
  if (auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
  return get_or_throw<double>(v_, Kind::float64, *this);
}
const std::string& Value::as_string() const {
  return get_or_throw<std::string>(v_, Kind::string, *this);
}
const Bytes& Value::as_bytes() const { return get_or_throw<Bytes>(v_, Kind::bytes, *this); }
const Value::List& Value::as_list() const { return get_or_throw<List>(v_, Kind::list, *this); }
const Value::Map& Value::as_map() const { return get_or_throw<Map>(v_, Kind::map, *this); }
Value::List& Value::as_list() {
  return const_cast<List&>(get_or_throw<List>(v_, Kind::list, *this));
}
Value::Map& Value::as_map() { return const_cast<Map&>(get_or_throw<Map>(v_, Kind::map, *this)); }

const Value& Value::at(std::string_view key) const {
  const Map& m = as_map();
  auto it = m.find(key);
  if (it == m.end()) throw Error(Errc::not_found, "no key \"" + std::string(key) + "\" in map");
  return it->second;
}

const Value& Value::at(std::size_t index) const {
  const List& l = as_list();
  if (index >= l.size()) {
    throw Error(Errc::invalid_argument, "index " + std::to_string(index) +
                                            " out of range for a list of " +
                                            std::to_string(l.size()));
  }
  return l[index];
}

std::string Value::to_string(std::size_t max_chars) const {
  std::string out;
  render(out, *this, max_chars);
  if (out.size() > max_chars) {
    out.resize(max_chars);
    out += "...";
  }
  return out;
}

}  // namespace flux
