# For consumers of an installed (static) Flux: the Cap'n Proto runtime libraries it links.
# CapnProtoConfig.cmake is avoided on purpose: it runs a C-only check that fails in
# projects without the C language. Creates CapnProto::capnp if missing.
if(NOT TARGET CapnProto::capnp)
  find_library(FLUX_CAPNP_LIBRARY capnp REQUIRED)
  find_library(FLUX_KJ_LIBRARY kj REQUIRED)
  add_library(CapnProto::capnp UNKNOWN IMPORTED)
  set_target_properties(CapnProto::capnp PROPERTIES
    IMPORTED_LOCATION "${FLUX_CAPNP_LIBRARY}"
    INTERFACE_LINK_LIBRARIES "${FLUX_KJ_LIBRARY};Threads::Threads")
endif()
