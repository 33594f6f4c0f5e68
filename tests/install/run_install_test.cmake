# ctest install_consumer (cmake -P): installs nnkit from the build tree into a fresh prefix,
# configures and builds tests/install/consumer (a separate project that uses
# find_package(nnkit CONFIG REQUIRED)) against that prefix alone, and runs the program.
# Any failing step fails the test.
# Inputs: NNKIT_BUILD_DIR, CONSUMER_SRC, WORK_DIR; optional GENERATOR, CXX_COMPILER,
# BUILD_TYPE, CXX_FLAGS, LINK_FLAGS.
foreach(v NNKIT_BUILD_DIR CONSUMER_SRC WORK_DIR)
  if(NOT ${v})
    message(FATAL_ERROR "run_install_test: ${v} not set")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "install_consumer: ${step} failed (${rc})\n$ ${cmd}\n${out}\n${err}")
  endif()
endfunction()

run("install" ${CMAKE_COMMAND} --install "${NNKIT_BUILD_DIR}" --prefix "${prefix}" --config "${BUILD_TYPE}")

set(configure_args -S "${CONSUMER_SRC}" -B "${WORK_DIR}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
if(GENERATOR)
  list(APPEND configure_args -G "${GENERATOR}")
endif()
if(CXX_COMPILER)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(CXX_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(LINK_FLAGS)
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}")
endif()
run("configure" ${CMAKE_COMMAND} ${configure_args})
run("build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build" --config "${BUILD_TYPE}")

# The consumer must have found nnkit in the fresh prefix, not in the build tree.
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" nnkit_dir_line REGEX "^nnkit_DIR:")
string(FIND "${nnkit_dir_line}" "${prefix}/" at)
if(at EQUAL -1)
  message(FATAL_ERROR "install_consumer: nnkit was not found in ${prefix}: ${nnkit_dir_line}")
endif()

file(GLOB_RECURSE consumer_exe "${WORK_DIR}/build/consumer" "${WORK_DIR}/build/*/consumer")
if(NOT consumer_exe)
  message(FATAL_ERROR "install_consumer: no consumer program was built")
endif()
list(GET consumer_exe 0 consumer_exe)
run("run" "${consumer_exe}")
message(STATUS "install_consumer: installed into ${prefix}, found with find_package(nnkit), built and ran")
