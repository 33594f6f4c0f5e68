# ctest helper (cmake -P): a compile-fail check passes only when the source fails to compile
# for the intended reason. A missing header or a typo fails compilation too, so besides a
# non-zero exit the compiler's output must match the expected diagnostic:
#   - the regex on a line `// compile-fail-expect: <regex>` in the source, when there is one;
#   - otherwise any `error:` that is not a `fatal error:` (missing header and the like).
# Inputs: COMPILER, SOURCE, STD, INCLUDES (list), DEFINES (list), FLAGS (list).
foreach(v COMPILER SOURCE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_compile_fail: ${v} not set")
  endif()
endforeach()

file(STRINGS "${SOURCE}" expect_lines REGEX "//[ ]*compile-fail-expect:")
set(expect "")
if(expect_lines)
  list(GET expect_lines 0 expect)
  string(REGEX REPLACE "^.*//[ ]*compile-fail-expect:[ ]*" "" expect "${expect}")
  string(STRIP "${expect}" expect)
endif()

set(args)
foreach(d IN LISTS INCLUDES)
  if(d)
    list(APPEND args "-I${d}")
  endif()
endforeach()
foreach(d IN LISTS DEFINES)
  if(d)
    list(APPEND args "-D${d}")
  endif()
endforeach()

execute_process(COMMAND "${COMPILER}" -std=${STD} ${FLAGS} ${args} -fsyntax-only -Werror "${SOURCE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(log "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(expect)
  if(NOT log MATCHES "${expect}")
    message(FATAL_ERROR "${SOURCE} failed to compile, but without the expected diagnostic "
                        "'${expect}':\n${log}")
  endif()
else()
  string(REGEX REPLACE "fatal error:" "" log_nonfatal "${log}")
  if(log MATCHES "fatal error:" OR NOT log_nonfatal MATCHES "error:")
    message(FATAL_ERROR "${SOURCE} failed to compile for another reason than expected:\n${log}")
  endif()
endif()
message(STATUS "${SOURCE} fails to compile, as it must:\n${log}")
