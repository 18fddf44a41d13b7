#pragma once
/// \file
/// The one header a Flux user includes.
///
/// ```cpp
/// #include <flux/flux.hpp>
/// auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
/// auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
/// flux::Runtime rt;
/// std::int64_t y = rt.run(inc | dbl, 3).value<std::int64_t>();   // 8
/// ```

#include "flux/cluster.hpp"   // IWYU pragma: export
#include "flux/codec.hpp"     // IWYU pragma: export
#include "flux/context.hpp"   // IWYU pragma: export
#include "flux/error.hpp"     // IWYU pragma: export
#include "flux/main.hpp"      // IWYU pragma: export
#include "flux/metrics.hpp"   // IWYU pragma: export
#include "flux/node.hpp"      // IWYU pragma: export
#include "flux/observer.hpp"  // IWYU pragma: export
#include "flux/pipeline.hpp"  // IWYU pragma: export
#include "flux/record.hpp"    // IWYU pragma: export
#include "flux/registry.hpp"  // IWYU pragma: export
#include "flux/runtime.hpp"   // IWYU pragma: export
#include "flux/storage.hpp"   // IWYU pragma: export
#include "flux/value.hpp"     // IWYU pragma: export
