# Extracts the snippets of DOC and compiles them, which must fail with an error located
# at EXPECT ("<doc name>:<line>"): the build reports a broken snippet at its line in the
# document, not somewhere in a generated file.
#
#   cmake -DEXTRACT=<tool> -DCXX=<compiler> -DFLAGS=<flags> -DINCLUDE=<dir> -DPRELUDE_DIR=<dir>
#         -DDOC=<file> -DOUT=<file.cpp> -DEXPECT=<doc name:line> -P expect_doc_error.cmake
execute_process(COMMAND "${EXTRACT}" "${DOC}" "${OUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "extract_snippets failed on ${DOC}")
endif()
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(
  COMMAND "${CXX}" ${flags} -fsyntax-only -I "${INCLUDE}" -I "${PRELUDE_DIR}" "${OUT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "the snippets of ${DOC} compiled, but one is broken")
endif()
string(FIND "${out}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "no error at ${EXPECT}; output:\n${out}")
endif()
message(STATUS "the broken snippet is reported at ${EXPECT}")
