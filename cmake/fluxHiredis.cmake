# hiredis 0.14 (Debian 12): its HiredisConfig.cmake sets variables but defines no target,
# and needs the version argument (without it, it fails with a string(REPLACE) error).
# Creates hiredis::hiredis if missing. Used by the build and by the installed fluxConfig.
find_package(Hiredis 0.14 REQUIRED)
if(NOT TARGET hiredis::hiredis)
  add_library(hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${HIREDIS_LIBRARIES}"
    INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIRS}")
endif()
