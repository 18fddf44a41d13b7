# Configures and builds tests/consumer_subdir (Flux through add_subdirectory), runs the
# consumer and checks its output.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${FLUX_SOURCE_DIR}/tests/consumer_subdir"
  -B "${WORK_DIR}" -DFLUX_SOURCE_DIR=${FLUX_SOURCE_DIR} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "configuring a project with add_subdirectory(flux) failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}" --target consumer
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "building the add_subdirectory consumer failed (${rc})")
endif()
execute_process(COMMAND "${WORK_DIR}/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc OR NOT out MATCHES "consumer result: 42")
  message(FATAL_ERROR "the add_subdirectory consumer failed (${rc}): ${out}")
endif()
