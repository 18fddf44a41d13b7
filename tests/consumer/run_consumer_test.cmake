# Installs the already built Flux into a fresh prefix, builds tests/consumer against it
# with find_package(flux CONFIG REQUIRED), runs it and checks its output.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${FLUX_BINARY_DIR}" --prefix "${prefix}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "installing flux into ${prefix} failed (${rc})")
endif()
set(sanitize_flags "")
if(FLUX_SANITIZE)  # a sanitized libflux needs the sanitizer runtime in the consumer too
  set(sanitize_flags "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${FLUX_SANITIZE}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${FLUX_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build"
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE} ${sanitize_flags}
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer with find_package(flux) failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc OR NOT out MATCHES "consumer result: 42")
  message(FATAL_ERROR "the consumer program failed (${rc}): ${out}")
endif()
