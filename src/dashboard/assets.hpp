#pragma once
// Internal: the dashboard's page (src/dashboard/assets/*), embedded into the binary at build
// time by cmake/fluxEmbedAssets.cmake: served from memory by exact path, so no request can
// name a file outside them.

#include <cstddef>
#include <string_view>

namespace flux::dashboard {

struct Asset {
  const char* data;
  std::size_t size;
  const char* content_type;
};

/// The asset served at `path` ("/", "/app.js", ...), or nullptr.
const Asset* find_asset(std::string_view path);

}  // namespace flux::dashboard
