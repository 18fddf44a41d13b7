# Compiles SOURCE, which must fail with exactly one error whose text contains the
# message on SOURCE's "// expect-error: " line (compared literally, not as a regex).
# What it checks is what a user sees: one error that says what to change.
#
#   cmake -DCXX=<compiler> -DFLAGS="<flags>" -DINCLUDE=<dir> -DSOURCE=<file> -P expect_error.cmake
file(STRINGS "${SOURCE}" expect_line REGEX "^// expect-error: ")
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE} has no '// expect-error: <message>' line")
endif()
string(REPLACE "// expect-error: " "" expected "${expect_line}")
string(REPLACE "\\;" ";" expected "${expected}")  # file(STRINGS) escapes semicolons

separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(
  COMMAND "${CXX}" ${flags} -fsyntax-only -I "${INCLUDE}" "${SOURCE}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${out}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the compiler's output does not contain\n  ${expected}\n"
                      "output:\n${out}")
endif()
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors error_count)
if(NOT error_count EQUAL 1)
  message(FATAL_ERROR "expected one error, got ${error_count}:\n${out}")
endif()
message(STATUS "one error, as expected: ${expected}")
