#include "flux/value.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

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
    case Errc::unavailable:
      return "unavailable";
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

// Appends a scalar (anything but a list or map).
void render_scalar(std::string& out, const Value& v, std::size_t max) {
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
    case Kind::list:
    case Kind::map:
      break;  // rendered by render()
  }
}

// Renders `root` with an explicit stack of the lists/maps being printed, so that a Value of
// any depth prints without recursion. Stops once `out` is longer than `max`.
void render(std::string& out, const Value& root, std::size_t max) {
  struct Open {
    const Value* container;
    std::size_t next = 0;             // list: index of the next element
    Value::Map::const_iterator it{};  // map: the next entry
  };
  std::vector<Open> open;
  // Prints `v`, or opens it if it is a list or map.
  const auto visit = [&](const Value& v) {
    if (v.is_list()) {
      out += '[';
      open.push_back({&v});
    } else if (v.is_map()) {
      out += '{';
      open.push_back({&v, 0, v.as_map().begin()});
    } else {
      render_scalar(out, v, max);
    }
  };
  visit(root);
  while (!open.empty() && out.size() <= max) {
    Open& top = open.back();
    if (top.container->is_list()) {
      const Value::List& l = top.container->as_list();
      if (top.next == l.size()) {
        out += ']';
        open.pop_back();
        continue;
      }
      if (top.next != 0) out += ", ";
      visit(l[top.next++]);  // may reallocate `open`: `top` is not used after this
    } else {
      const Value::Map& m = top.container->as_map();
      if (top.it == m.end()) {
        out += '}';
        open.pop_back();
        continue;
      }
      if (top.it != m.begin()) out += ", ";
      const auto& [key, value] = *top.it++;
      append_escaped(out, key);
      out += ": ";
      visit(value);
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

// ---------------------------------------------------------------------------------------------
// Copy, assignment, destruction, equality and depth without recursion.
//
// std::vector<Value> and std::map<..., Value> copy, compare and destroy their elements by
// calling Value's own members, so the defaults recurse once per level of nesting: a user's
// Value 100,000 lists deep overflowed the stack of whichever thread last dropped or copied it
// (a persistence thread, far from the cause). Each function below walks the nested
// containers with an explicit stack on the heap instead.

namespace {
bool is_nonempty_container(const Value& v) noexcept {
  return (v.is_list() && !v.as_list().empty()) || (v.is_map() && !v.as_map().empty());
}
}  // namespace

void Value::copy_containers(const Value& other) {
  // Copies `from` into `to` except for the elements of a list/map, which become nulls;
  // returns true if there are elements to fill in.
  const auto copy_shell = [](const Value& from, Value& to) {
    if (from.is_list()) {
      to.v_ = List(from.as_list().size());
      return !from.as_list().empty();
    }
    if (from.is_map()) {
      Map m;
      for (const auto& [key, e] : from.as_map()) m.emplace_hint(m.end(), key, Value());
      to.v_ = std::move(m);
      return !from.as_map().empty();
    }
    to.v_ = from.v_;  // a scalar, string or bytes: the variant copies it without recursion
    return false;
  };
  // Containers whose shells exist but whose elements are still to be copied. The shells'
  // elements are never moved afterwards (a list is not resized, map nodes stay put), so the
  // pointers stay valid.
  std::vector<std::pair<const Value*, Value*>> todo;
  if (copy_shell(other, *this)) todo.emplace_back(&other, this);
  while (!todo.empty()) {
    const auto [from, to] = todo.back();
    todo.pop_back();
    if (from->is_list()) {
      const List& src = from->as_list();
      List& dst = to->as_list();
      for (std::size_t i = 0; i < src.size(); ++i)
        if (copy_shell(src[i], dst[i])) todo.emplace_back(&src[i], &dst[i]);
    } else {
      auto dst = to->as_map().begin();
      for (const auto& [key, e] : from->as_map()) {
        if (copy_shell(e, dst->second)) todo.emplace_back(&e, &dst->second);
        ++dst;
      }
    }
  }
}

Value& Value::operator=(const Value& other) {
  if (this != &other) *this = Value(other);  // copy first: `other` may live inside *this
  return *this;
}

Value& Value::move_assign_slow(Value&& other) noexcept {
  if (this == &other) return *this;
  // Take `other` over before letting go of the old contents, which may own `other`; the old
  // contents are then destroyed by ~Value, without recursion.
  Value taken(std::move(other));
  v_.swap(taken.v_);  // same kind: swaps the containers; otherwise moves (nothing freed)
  return *this;
}

bool Value::holds_nested_containers() const noexcept {
  if (const auto* l = std::get_if<List>(&v_)) {
    for (const Value& e : *l)
      if (is_nonempty_container(e)) return true;
  } else if (const auto* m = std::get_if<Map>(&v_)) {
    for (const auto& [key, e] : *m)
      if (is_nonempty_container(e)) return true;
  }
  return false;
}

void Value::dismantle() noexcept {
  // Moves every non-empty nested list/map onto a heap stack (moving out leaves an empty
  // container behind), then destroys them one at a time after moving their own nested
  // containers onto the stack: every destructor that runs sees at most one level.
  std::vector<Value> pending;
  const auto move_out_children = [&pending](Value& v) {
    if (auto* l = std::get_if<List>(&v.v_)) {
      for (Value& e : *l)
        if (is_nonempty_container(e)) pending.push_back(std::move(e));
    } else if (auto* m = std::get_if<Map>(&v.v_)) {
      for (auto& [key, e] : *m)
        if (is_nonempty_container(e)) pending.push_back(std::move(e));
    }
  };
  try {
    move_out_children(*this);
    while (!pending.empty()) {
      Value v = std::move(pending.back());
      pending.pop_back();
      move_out_children(v);
    }  // v is destroyed here, one level deep
  } catch (...) {
    // Out of memory for the stack: what was not moved yet is destroyed by the containers'
    // own (recursive) destructors -- no worse than without this function.
  }
}

bool operator==(const Value& a, const Value& b) {
  // Pairs of lists/maps whose kinds and sizes are equal and whose elements are to be compared.
  std::vector<std::pair<const Value*, const Value*>> todo;
  // Compares all but the elements; queues the elements of non-empty lists/maps.
  const auto shallow_equal = [&todo](const Value& x, const Value& y) {
    if (x.kind() != y.kind()) return false;
    if (x.is_list()) {
      if (x.as_list().size() != y.as_list().size()) return false;
      if (!x.as_list().empty()) todo.emplace_back(&x, &y);
      return true;
    }
    if (x.is_map()) {
      if (x.as_map().size() != y.as_map().size()) return false;
      if (!x.as_map().empty()) todo.emplace_back(&x, &y);
      return true;
    }
    return x.v_ == y.v_;  // a scalar, string or bytes: no recursion
  };
  if (!shallow_equal(a, b)) return false;
  while (!todo.empty()) {
    const auto [x, y] = todo.back();
    todo.pop_back();
    if (x->is_list()) {
      const Value::List& lx = x->as_list();
      const Value::List& ly = y->as_list();
      for (std::size_t i = 0; i < lx.size(); ++i)
        if (!shallow_equal(lx[i], ly[i])) return false;
    } else {
      auto iy = y->as_map().begin();
      for (const auto& [key, e] : x->as_map()) {
        if (key != iy->first || !shallow_equal(e, iy->second)) return false;
        ++iy;
      }
    }
  }
  return true;
}

std::size_t Value::depth() const {
  if (!is_list() && !is_map()) return 0;
  // The usual case, a flat list or map (a run's arguments, a parallel's outputs), is
  // answered without a work list.
  auto container = [](const Value& e) { return e.is_list() || e.is_map(); };
  if (is_list() ? std::none_of(as_list().begin(), as_list().end(), container)
                : std::none_of(as_map().begin(), as_map().end(),
                               [&](const auto& kv) { return container(kv.second); })) {
    return 1;
  }
  std::size_t deepest = 0;
  std::vector<std::pair<const Value*, std::size_t>> todo{{this, 1}};  // a container, its depth
  while (!todo.empty()) {
    const auto [v, d] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, d);
    if (v->is_list()) {
      for (const Value& e : v->as_list())
        if (e.is_list() || e.is_map()) todo.emplace_back(&e, d + 1);
    } else {
      for (const auto& [key, e] : v->as_map())
        if (e.is_list() || e.is_map()) todo.emplace_back(&e, d + 1);
    }
  }
  return deepest;
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
