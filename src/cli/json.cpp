#include "cli/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>

namespace flux::cli {

namespace {

std::string base64(const Bytes& bytes) {
  static constexpr char k_alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = std::to_integer<unsigned>(bytes[i]) << 16 |
                       std::to_integer<unsigned>(bytes[i + 1]) << 8 |
                       std::to_integer<unsigned>(bytes[i + 2]);
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += k_alphabet[n >> 6 & 63];
    out += k_alphabet[n & 63];
  }
  if (i < bytes.size()) {
    unsigned n = std::to_integer<unsigned>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= std::to_integer<unsigned>(bytes[i + 1]) << 8;
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += i + 1 < bytes.size() ? k_alphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

Value from_json(const Json& j, std::size_t depth) {
  if (depth > k_max_value_depth) {
    throw Error(Errc::invalid_argument, "--input nests lists and objects deeper than " +
                                            std::to_string(k_max_value_depth) +
                                            " levels (flux::k_max_value_depth)");
  }
  switch (j.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return Value{};
    case Json::value_t::boolean:
      return Value(j.get<bool>());
    case Json::value_t::number_integer:
      return Value(j.get<std::int64_t>());
    case Json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw Error(Errc::invalid_argument, "--input holds the integer " + std::to_string(u) +
                                                ", larger than int64 allows (9223372036854775807)");
      }
      return Value(static_cast<std::int64_t>(u));
    }
    case Json::value_t::number_float:
      return Value(j.get<double>());
    case Json::value_t::string:
      return Value(j.get<std::string>());
    case Json::value_t::binary:
      return Value(
          Bytes(reinterpret_cast<const std::byte*>(j.get_binary().data()),
                reinterpret_cast<const std::byte*>(j.get_binary().data()) + j.get_binary().size()));
    case Json::value_t::array: {
      Value::List list;
      list.reserve(j.size());
      for (const Json& e : j) list.push_back(from_json(e, depth + 1));
      return Value(std::move(list));
    }
    case Json::value_t::object: {
      Value::Map map;
      for (const auto& [k, v] : j.items()) map.insert_or_assign(k, from_json(v, depth + 1));
      return Value(std::move(map));
    }
  }
  return Value{};
}

// Depth of `text`'s nesting, without building it: nlohmann builds documents with an explicit
// stack, but the conversion above recurses, so a million brackets are refused first.
std::size_t nesting(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Json to_json(const Value& value) {
  switch (value.kind()) {
    case Kind::null:
      return nullptr;
    case Kind::boolean:
      return value.as_bool();
    case Kind::int64:
      return value.as_int();
    case Kind::float64: {
      const double d = value.as_float();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      return d;
    }
    case Kind::string:
      return value.as_string();
    case Kind::bytes:
      return Json{{"$bytes", base64(value.as_bytes())}};
    case Kind::list: {
      Json out = Json::array();
      for (const Value& v : value.as_list()) out.push_back(to_json(v));
      return out;
    }
    case Kind::map: {
      Json out = Json::object();
      for (const auto& [k, v] : value.as_map()) out[k] = to_json(v);
      return out;
    }
  }
  return nullptr;
}

Value parse_input(std::string_view text) {
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // Position as line and column too: nlohmann's message has them ("parse error at line 1,
    // column 7: syntax error while parsing object key - ..."); drop its "[json.exception...]"
    // prefix, which says nothing to a user.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw Error(Errc::invalid_argument,
                "--input is not valid JSON (byte " + std::to_string(e.byte) + "): " + what);
  }
  if (nesting(text) > k_max_value_depth) {
    throw Error(Errc::invalid_argument, "--input nests lists and objects deeper than " +
                                            std::to_string(k_max_value_depth) +
                                            " levels (flux::k_max_value_depth)");
  }
  return from_json(j, 0);
}

std::string format_time(Timestamp t) {
  if (t.time_since_epoch().count() == 0) return "";
  const auto ns = t.time_since_epoch().count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  long micros = static_cast<long>((ns % 1'000'000'000) / 1000);
  if (micros < 0) {
    micros += 1'000'000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

std::string format_duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f us", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.3f ms", ns / 1e6);
  } else if (ns < 60e9) {
    std::snprintf(buf, sizeof buf, "%.3f s", ns / 1e9);
  } else {
    const long long s = d.count() / 1'000'000'000;
    if (s < 3600) {
      std::snprintf(buf, sizeof buf, "%lldm %02llds", s / 60, s % 60);
    } else if (s < 86400) {
      std::snprintf(buf, sizeof buf, "%lldh %02lldm", s / 3600, s % 3600 / 60);
    } else {
      std::snprintf(buf, sizeof buf, "%lldd %02lldh", s / 86400, s % 86400 / 3600);
    }
  }
  return buf;
}

namespace {

Json time_or_null(const std::optional<Timestamp>& t) {
  if (!t) return nullptr;
  return format_time(*t);
}

const char* to_string(HistoryValues v) {
  switch (v) {
    case HistoryValues::full:
      return "full";
    case HistoryValues::none:
      return "none";
    case HistoryValues::truncated:
      return "truncated";
  }
  return "unknown";
}

const char* to_string(HistoryEntry::Type t) {
  switch (t) {
    case HistoryEntry::Type::node:
      return "node";
    case HistoryEntry::Type::parallel:
      return "parallel";
    case HistoryEntry::Type::resume:
      return "resume";
    case HistoryEntry::Type::cancel:
      return "cancel";
    case HistoryEntry::Type::compensating:
      return "compensating";
    case HistoryEntry::Type::compensate:
      return "compensate";
  }
  return "unknown";
}

}  // namespace

Json run_json(const RunInfo& run) {
  Json out;
  out["id"] = run.id;
  out["pipeline"] = run.pipeline;
  out["status"] = flux::to_string(run.status);
  out["created"] = format_time(run.created);
  out["updated"] = format_time(run.updated);
  out["finished"] = time_or_null(run.finished);
  out["owner"] = run.owner;
  out["fingerprint"] = run.fingerprint;
  out["parent_run_id"] = run.parent_run_id.empty() ? Json(nullptr) : Json(run.parent_run_id);
  out["parent_step"] = run.parent_step.empty() ? Json(nullptr) : Json(run.parent_step);
  out["history_values"] = to_string(run.history_values);
  out["steps_total"] = run.steps_total ? Json(*run.steps_total) : Json(nullptr);
  out["steps_done"] = run.steps_done ? Json(*run.steps_done) : Json(nullptr);
  out["input"] = to_json(run.input);
  out["output"] = to_json(run.output);
  if (run.error) {
    out["error"] = {
        {"node", run.error->node}, {"step", run.error->step}, {"message", run.error->message}};
  } else {
    out["error"] = nullptr;
  }
  return out;
}

Json history_json(const HistoryEntry& e) {
  Json out;
  out["seq"] = e.seq;
  out["type"] = to_string(e.type);
  out["step"] = e.step;
  out["node"] = e.node;
  out["attempt"] = e.attempt;
  out["worker"] = e.worker.empty() ? Json(nullptr) : Json(e.worker);
  out["status"] = e.ok() ? "ok" : "failed";
  out["start"] = format_time(e.start);
  out["end"] = format_time(e.end);
  out["duration_ns"] = e.duration.count();
  out["error"] = e.error ? Json(*e.error) : Json(nullptr);
  out["input"] = to_json(e.input);
  out["output"] = to_json(e.output);
  out["children"] = e.children;
  return out;
}

Json worker_json(const detail::WorkerCard& card) {
  Json out;
  out["id"] = card.id;
  out["host"] = card.host;
  out["port"] = card.port;
  out["capacity"] = card.capacity;
  out["protocol"] = card.protocol;
  out["tls"] = card.tls;
  out["pid"] = card.pid;
  out["started"] = format_time(card.started);
  out["busy"] = card.busy;
  out["last_heartbeat"] = format_time(card.heartbeat);
  Json nodes = Json::array();
  for (const auto& [name, sig] : card.nodes) nodes.push_back({{"name", name}, {"signature", sig}});
  out["nodes"] = std::move(nodes);
  return out;
}

Json show_json(const RunInfo& run) {
  Json history = Json::array();
  for (const auto& e : run.history) history.push_back(history_json(e));
  return Json{{"run", run_json(run)}, {"history", std::move(history)}};
}

Json workers_json(const std::vector<detail::WorkerCard>& cards,
                  const std::vector<std::optional<std::chrono::milliseconds>>& expires_in,
                  const std::vector<std::string>& corrupt) {
  Json list = Json::array();
  for (std::size_t i = 0; i < cards.size(); ++i) {
    Json w = worker_json(cards[i]);
    w["expires_in_ms"] =
        i < expires_in.size() && expires_in[i] ? Json(expires_in[i]->count()) : Json(nullptr);
    list.push_back(std::move(w));
  }
  Json bad = Json::array();
  for (const auto& k : corrupt) bad.push_back({{"key", k}});
  return Json{{"workers", std::move(list)}, {"corrupt", std::move(bad)}};
}

Json trace_json(const RunInfo& run) {
  // Lanes: (worker, sub-lane) -> tid, and the end time of the slices open on each lane so
  // that a slice overlapping another without nesting in it goes to the next sub-lane.
  struct Lane {
    int tid;
    std::vector<std::int64_t> open_ends;  // a stack of enclosing slices' ends
  };
  std::map<std::string, std::vector<Lane>> lanes;
  int next_tid = 1;
  Json events = Json::array();
  // Microseconds since the run was created (the first step's start if earlier), so that the
  // numbers stay short and exact; the absolute time is in otherData.
  Timestamp origin = run.created;
  for (const HistoryEntry& e : run.history) origin = std::min(origin, e.start);
  auto us = [origin](Timestamp t) { return static_cast<double>((t - origin).count()) / 1000.0; };
  const std::string process = "run " + run.id + " (" + run.pipeline + ")";
  events.push_back({{"name", "process_name"},
                    {"ph", "M"},
                    {"pid", 1},
                    {"tid", 0},
                    {"args", {{"name", process}}}});
  auto lane_for = [&](const std::string& worker, std::int64_t start, std::int64_t end) -> int {
    std::vector<Lane>& group = lanes[worker];
    for (Lane& lane : group) {
      while (!lane.open_ends.empty() && lane.open_ends.back() <= start) lane.open_ends.pop_back();
      if (lane.open_ends.empty() || end <= lane.open_ends.back()) {
        lane.open_ends.push_back(end);
        return lane.tid;
      }
    }
    Lane lane{next_tid++, {end}};
    std::string name = worker.empty() ? "owner " + run.owner : "worker " + worker;
    if (!group.empty()) name += " (" + std::to_string(group.size() + 1) + ")";
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"tid", lane.tid},
                      {"args", {{"name", name}}}});
    events.push_back({{"name", "thread_sort_index"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"tid", lane.tid},
                      {"args", {{"sort_index", lane.tid}}}});
    group.push_back(std::move(lane));
    return group.back().tid;
  };
  // In start order (longest first on ties), so that an enclosing slice is placed before
  // the ones it encloses.
  std::vector<const HistoryEntry*> steps;
  for (const HistoryEntry& e : run.history) steps.push_back(&e);
  std::stable_sort(steps.begin(), steps.end(), [](const HistoryEntry* a, const HistoryEntry* b) {
    if (a->start != b->start) return a->start < b->start;
    return a->end > b->end;
  });
  for (const HistoryEntry* e : steps) {
    const std::int64_t start = e->start.time_since_epoch().count();
    const std::int64_t end = std::max(start, e->end.time_since_epoch().count());
    const int tid = lane_for(e->worker, start, end);
    Json args = {{"step", e->step},
                 {"attempt", e->attempt},
                 {"status", e->ok() ? "ok" : "failed"},
                 {"seq", e->seq}};
    if (e->error) args["error"] = *e->error;
    if (!e->worker.empty()) args["worker"] = e->worker;
    const std::string name =
        e->type == HistoryEntry::Type::node ? e->node + " [" + e->step + "]" : e->node;
    events.push_back({{"name", name},
                      {"cat", to_string(e->type)},
                      {"ph", "X"},
                      {"ts", us(e->start)},
                      {"dur", static_cast<double>(end - start) / 1000.0},
                      {"pid", 1},
                      {"tid", tid},
                      {"args", std::move(args)}});
  }
  Json out;
  out["traceEvents"] = std::move(events);
  out["displayTimeUnit"] = "ms";
  out["otherData"] = {
      {"run_id", run.id}, {"pipeline", run.pipeline}, {"status", flux::to_string(run.status)}};
  return out;
}

std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace flux::cli
