// bench_report: turns the JSON lines written by the benchmark programs into a table on
// stdout (Markdown) and a JSON document.
//
//   bench_report RESULTS.jsonl OUT.json
//
// Input: one flat JSON object per line (see bench_common.hpp). Lines with "row" are
// results; lines with "meta" describe the build, the machine and the sitting and are
// copied into OUT.json as they are; anything else (progress text) is ignored.
// Per row and side ("flux", "baseline"): median, min and max over the repetitions;
// ratio = Flux median / baseline median (above 1 means Flux is slower for "lower is
// better" rows, faster for "higher is better" rows). Targets: "ratio<=X", "ratio>=X",
// "value>=X", "value<=X" on the Flux side.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct JsonValue {
  bool is_string = false;
  bool is_null = false;
  std::string text;  // the string, or the number as written
  double number = 0;
};
using Object = std::vector<std::pair<std::string, JsonValue>>;

const JsonValue* find(const Object& o, const std::string& key) {
  for (const auto& [k, v] : o) {
    if (k == key) return &v;
  }
  return nullptr;
}
std::string get_str(const Object& o, const std::string& key) {
  const JsonValue* v = find(o, key);
  return v ? v->text : "";
}

/// Parses one flat JSON object (string, number, true/false/null values); nullopt if not one.
std::optional<Object> parse_line(const std::string& s) {
  std::size_t i = 0;
  auto ws = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  auto parse_string = [&](std::string& out) -> bool {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c == '\\' && i < s.size()) {
        char e = s[i++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'u':
            if (i + 4 <= s.size()) {
              out += static_cast<char>(std::stoi(s.substr(i, 4), nullptr, 16));
              i += 4;
            }
            break;
          default:
            out += e;
        }
      } else {
        out += c;
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  Object obj;
  ws();
  if (i < s.size() && s[i] == '}') return obj;
  while (true) {
    ws();
    std::string key;
    if (!parse_string(key)) return std::nullopt;
    ws();
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    ws();
    JsonValue v;
    if (i < s.size() && s[i] == '"') {
      v.is_string = true;
      if (!parse_string(v.text)) return std::nullopt;
    } else {
      std::size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' &&
             !std::isspace(static_cast<unsigned char>(s[i]))) {
        ++i;
      }
      v.text = s.substr(start, i - start);
      if (v.text == "null") {
        v.is_null = true;
      } else if (v.text == "true" || v.text == "false") {
        v.number = v.text == "true";
      } else {
        try {
          v.number = std::stod(v.text);
        } catch (...) {
          return std::nullopt;
        }
      }
    }
    obj.emplace_back(std::move(key), std::move(v));
    ws();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') return obj;
    return std::nullopt;
  }
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
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
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
std::string json_object(const Object& o) {
  std::string out = "{";
  for (std::size_t i = 0; i < o.size(); ++i) {
    if (i) out += ", ";
    out += json_escape(o[i].first) + ": ";
    const JsonValue& v = o[i].second;
    out += v.is_string ? json_escape(v.text) : v.is_null ? "null" : v.text;
  }
  return out + "}";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// 1,234,567 for large values, 3 significant digits below 100.
std::string fmt(double v) {
  char buf[64];
  double a = std::fabs(v);
  if (a >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f", a);
    std::string digits = buf, out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return (v < 0 ? "-" : "") + out;
  }
  if (a >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (a >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else if (a >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

struct Side {
  std::string name, unit;
  std::vector<double> values;
  double med() const { return median(values); }
  double min() const { return *std::min_element(values.begin(), values.end()); }
  double max() const { return *std::max_element(values.begin(), values.end()); }
};
struct Row {
  std::string row, workload, better, target;
  std::optional<Side> flux, baseline;
};

std::string cell(const std::optional<Side>& s) {
  if (!s || s->values.empty()) return "—";
  return fmt(s->med()) + " (" + fmt(s->min()) + "–" + fmt(s->max()) + ")";
}

/// Evaluates "ratio<=2" etc.; nullopt when it cannot be evaluated.
std::optional<bool> target_met(const Row& r, std::optional<double> ratio) {
  if (r.target.empty() || !r.flux) return std::nullopt;
  auto op_at = r.target.find_first_of("<>");
  if (op_at == std::string::npos || op_at + 2 > r.target.size()) return std::nullopt;
  std::string what = r.target.substr(0, op_at);
  bool le = r.target[op_at] == '<';
  double bound = std::stod(r.target.substr(op_at + 2));
  std::optional<double> x;
  if (what == "ratio") x = ratio;
  if (what == "value") x = r.flux->med();
  if (!x) return std::nullopt;
  return le ? *x <= bound : *x >= bound;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench_report RESULTS.jsonl OUT.json\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "bench_report: cannot read %s\n", argv[1]);
    return 1;
  }
  std::vector<Object> metas;
  std::vector<Object> results;
  std::vector<Row> rows;
  std::map<std::string, std::size_t> index;
  std::string line;
  while (std::getline(in, line)) {
    auto obj = parse_line(line);
    if (!obj) continue;
    if (find(*obj, "meta")) {
      metas.push_back(*obj);
      continue;
    }
    const JsonValue* value = find(*obj, "value");
    std::string row = get_str(*obj, "row"), side = get_str(*obj, "side");
    if (row.empty() || !value || value->is_null || (side != "flux" && side != "baseline")) {
      continue;
    }
    results.push_back(*obj);
    auto [it, fresh] = index.emplace(row, rows.size());
    if (fresh)
      rows.push_back(Row{row, get_str(*obj, "workload"), get_str(*obj, "better"), "", {}, {}});
    Row& r = rows[it->second];
    if (!get_str(*obj, "target").empty()) r.target = get_str(*obj, "target");
    std::optional<Side>& s = side == "flux" ? r.flux : r.baseline;
    if (!s) s = Side{get_str(*obj, "name"), get_str(*obj, "unit"), {}};
    s->values.push_back(value->number);
  }

  // Table.
  std::ostringstream t;
  t << "| workload | Flux: median (min–max) | baseline: median (min–max) | ratio Flux/baseline"
       " | target |\n";
  t << "|---|---|---|---|---|\n";
  std::vector<std::optional<double>> ratios;
  for (const Row& r : rows) {
    std::optional<double> ratio;
    if (r.flux && r.baseline && r.baseline->med() != 0) ratio = r.flux->med() / r.baseline->med();
    ratios.push_back(ratio);
    auto met = target_met(r, ratio);
    std::string target =
        r.target.empty() ? "" : r.target + (met ? (*met ? ": met" : ": MISSED") : "");
    char rbuf[32] = "—";
    if (ratio) std::snprintf(rbuf, sizeof rbuf, "%.3g", *ratio);
    t << "| " << r.row << " | " << cell(r.flux) << " | " << cell(r.baseline) << " | " << rbuf
      << " | " << target << " |\n";
  }
  std::size_t reps = 0;
  for (const Row& r : rows) {
    if (r.flux) reps = std::max(reps, r.flux->values.size());
    if (r.baseline) reps = std::max(reps, r.baseline->values.size());
  }
  t << "\nRepetitions per figure: up to " << reps << ". Sides:\n";
  for (const Row& r : rows) {
    t << "- " << r.row << ": Flux = " << (r.flux ? r.flux->name + " [" + r.flux->unit + "]" : "—")
      << "; baseline = " << (r.baseline ? r.baseline->name + " [" + r.baseline->unit + "]" : "—")
      << "\n";
  }
  std::cout << t.str();

  // JSON.
  std::ofstream out(argv[2]);
  if (!out) {
    std::fprintf(stderr, "bench_report: cannot write %s\n", argv[2]);
    return 1;
  }
  auto side_json = [](const std::optional<Side>& s) -> std::string {
    if (!s) return "null";
    std::string values = "[";
    for (std::size_t i = 0; i < s->values.size(); ++i) {
      values += (i ? ", " : "") + json_number(s->values[i]);
    }
    values += "]";
    return "{\"name\": " + json_escape(s->name) + ", \"unit\": " + json_escape(s->unit) +
           ", \"median\": " + json_number(s->med()) + ", \"min\": " + json_number(s->min()) +
           ", \"max\": " + json_number(s->max()) + ", \"n\": " + std::to_string(s->values.size()) +
           ", \"values\": " + values + "}";
  };
  out << "{\n  \"meta\": [";
  for (std::size_t i = 0; i < metas.size(); ++i)
    out << (i ? ",\n    " : "\n    ") << json_object(metas[i]);
  out << "\n  ],\n  \"rows\": [";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    auto met = target_met(r, ratios[i]);
    out << (i ? ",\n" : "\n") << "    {\"row\": " << json_escape(r.row)
        << ", \"workload\": " << json_escape(r.workload)
        << ", \"better\": " << json_escape(r.better) << ",\n     \"flux\": " << side_json(r.flux)
        << ",\n     \"baseline\": " << side_json(r.baseline)
        << ",\n     \"ratio\": " << (ratios[i] ? json_number(*ratios[i]) : "null")
        << ", \"target\": " << (r.target.empty() ? "null" : json_escape(r.target))
        << ", \"target_met\": " << (met ? (*met ? "true" : "false") : "null") << "}";
  }
  out << "\n  ],\n  \"results\": [";
  for (std::size_t i = 0; i < results.size(); ++i)
    out << (i ? ",\n    " : "\n    ") << json_object(results[i]);
  out << "\n  ]\n}\n";
  return 0;
}
