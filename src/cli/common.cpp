#include "cli/common.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "redis/redis_client.hpp"

namespace flux::cli {

int exit_code_for(const Error& e) {
  switch (e.code()) {
    case Errc::invalid_argument:
    case Errc::type_mismatch:
      return code(ExitCode::usage);
    case Errc::not_found:
      return code(ExitCode::not_found);
    case Errc::storage:
      return code(ExitCode::store_unreachable);
    case Errc::run_owned:
      return code(ExitCode::run_owned);
    case Errc::node_failed:
    case Errc::unavailable:
      return code(ExitCode::failed);
  }
  return code(ExitCode::failed);
}

int classify_storage_error(const std::string& url) {
  if (url.rfind("redis://", 0) != 0) return code(ExitCode::corrupt);
  try {
    detail::RedisConnection probe(detail::parse_redis_url(url), std::chrono::seconds(1),
                                  std::chrono::milliseconds(0));
    auto replies = probe.execute({{"PING"}});
    if (!replies.empty() && replies[0].type != detail::RedisReply::Type::error) {
      return code(ExitCode::corrupt);
    }
  } catch (const Error&) {
  }
  return code(ExitCode::store_unreachable);
}

std::string store_url(const std::string& store) {
  if (!store.empty()) return store;
  const char* env = std::getenv("FLUX_STORE");
  return env ? env : "";
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::add(std::vector<std::string> row) {
  row.resize(columns_.size());
  for (std::string& cell : row) cell = one_line(std::move(cell));
  rows_.push_back(std::move(row));
}

namespace {
// Display width of UTF-8 text: code points, not bytes (good enough for tables of ids, names
// and messages; wide CJK characters count as one).
std::size_t width_of(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
std::string cut(const std::string& s, std::size_t width) {
  if (width_of(s) <= width) return s;
  if (width <= 3) return std::string(width, '.');
  std::string out;
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool starts = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (starts && w == width - 3) break;
    if (starts) ++w;
    out += s[i];
  }
  return out + "...";
}
}  // namespace

std::string Table::render(std::size_t width) const {
  const std::size_t n = columns_.size();
  std::vector<std::size_t> widths(n);
  std::size_t used = n > 0 ? 2 * (n - 1) : 0;  // two spaces between columns
  std::size_t flex = n;
  for (std::size_t c = 0; c < n; ++c) {
    widths[c] = width_of(columns_[c].name);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], width_of(row[c]));
    if (columns_[c].max == 0) {
      flex = c;
    } else {
      widths[c] = std::min(widths[c], std::max(columns_[c].max, width_of(columns_[c].name)));
      used += widths[c];
    }
  }
  if (flex < n) widths[flex] = std::min(widths[flex], width > used ? width - used : 0);
  std::vector<std::string> header;
  for (const auto& c : columns_) header.push_back(c.name);
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < n; ++c) {
      std::string cell = cut(cells[c], widths[c]);
      out += cell;
      if (c + 1 < n) out += std::string(widths[c] - width_of(cell) + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (width_of(out) > width) out = cut(out, width);  // a table whose maxima do not fit
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows_) out += line(row);
  return out;
}

std::string new_run_id() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  std::mt19937_64 rng(seq);
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & ~std::uint64_t{0xF000}) | 0x4000;                           // version 4
  lo = (lo & ~(std::uint64_t{0xC} << 60)) | (std::uint64_t{0x8} << 60);  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>(hi >> 16 & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::string one_line(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

}  // namespace flux::cli
